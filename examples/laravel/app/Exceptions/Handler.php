<?php

declare(strict_types=1);

namespace App\Exceptions;

use EventSidecar\Client\Exception\ConcurrencyException;
use EventSidecar\Client\Exception\InvalidArgumentException;
use EventSidecar\Client\Exception\TimeoutException;
use EventSidecar\Client\Exception\UnavailableException;
use Illuminate\Foundation\Exceptions\Handler as ExceptionHandler;
use Illuminate\Http\JsonResponse;
use Throwable;

/**
 * Handler answers every error as JSON and maps the event store's errors to
 * HTTP: a version conflict is 409, an unreachable or overloaded sidecar
 * 503 (the client may retry), a request the store refused 422.
 */
final class Handler extends ExceptionHandler
{
    /** Seconds a client should wait before it retries after a 503. */
    private const RETRY_AFTER = 1;

    /** @var list<class-string<Throwable>> */
    protected $dontReport = [
        ConcurrencyException::class,
    ];

    public function register(): void
    {
        $this->renderable(static fn (ConcurrencyException $e): JsonResponse => new JsonResponse([
            'message' => 'the content changed meanwhile',
            'expected_version' => $e->expectedVersion,
            'actual_version' => $e->actualVersion,
        ], 409));

        $unavailable = static fn (): JsonResponse => new JsonResponse(
            ['message' => 'the event store is unavailable, retry later'],
            503,
            ['Retry-After' => (string) self::RETRY_AFTER],
        );
        $this->renderable(static fn (UnavailableException $e): JsonResponse => $unavailable());
        $this->renderable(static fn (TimeoutException $e): JsonResponse => $unavailable());

        $this->renderable(static fn (InvalidArgumentException $e): JsonResponse => new JsonResponse(
            ['message' => $e->getMessage()],
            422,
        ));

        // The store's availability is an operational condition, not a bug.
        $this->reportable(static function (UnavailableException|TimeoutException $e): bool {
            logger()->warning('event store unavailable', ['err' => $e->getMessage()]);

            return false;
        });
    }

    /** The API answers JSON only, also to requests that did not ask. */
    protected function shouldReturnJson($request, Throwable $e): bool
    {
        return true;
    }
}
