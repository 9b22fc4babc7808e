<?php

declare(strict_types=1);

namespace App\Http\Controllers;

use App\Content\ContentView;
use App\Content\Events;
use EventSidecar\Client\EventStoreClient;
use EventSidecar\Client\Exception\NotFoundException;
use EventSidecar\Client\NewEvent;
use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Routing\Controller;
use Illuminate\Support\Str;
use Ramsey\Uuid\Uuid;

/**
 * ContentController records submissions as events and shows a content's
 * stream. It changes no state itself: the sidecar stores the facts, and
 * the analyzer appends its result to the same stream.
 */
final class ContentController extends Controller
{
    public function __construct(private readonly EventStoreClient $events)
    {
    }

    /**
     * store validates a submission and starts the content's stream with
     * ContentSubmitted: 202 with the content id and the stream's version.
     */
    public function store(Request $request): JsonResponse
    {
        $input = $request->validate([
            'content' => ['required', 'string', 'max:1000'],
            'author_id' => ['required', 'string'],
        ]);
        $contentId = (string) Str::uuid();

        $result = $this->events->appendToStream($contentId, EventStoreClient::NO_STREAM, [
            new NewEvent(Events::SUBMITTED, [
                'content_id' => $contentId,
                'author_id' => $input['author_id'],
                'content' => $input['content'],
            ], [
                'ip' => $request->ip(),
                'user_agent' => $request->userAgent(),
                'request_id' => $request->header('X-Request-Id') ?: Uuid::uuid4()->toString(),
                'schema_version' => Events::SCHEMA_VERSION,
            ]),
        ]);

        return new JsonResponse(['content_id' => $contentId, 'version' => $result->currentVersion], 202);
    }

    /** show loads the content's stream: its status, result and events. */
    public function show(string $id): JsonResponse
    {
        try {
            $events = $this->events->readStream($id);
        } catch (NotFoundException) {
            return new JsonResponse(['message' => 'no content with this id'], 404);
        }

        return new JsonResponse((new ContentView($id, $events))->toArray());
    }
}
