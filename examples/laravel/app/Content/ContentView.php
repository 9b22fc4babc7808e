<?php

declare(strict_types=1);

namespace App\Content;

use EventSidecar\Client\RecordedEvent;

/**
 * ContentView folds a content stream into what the API shows: pending
 * until the analyzer recorded its result, analyzed afterwards. Event types
 * it does not know are listed and otherwise ignored.
 */
final class ContentView
{
    public const PENDING = 'pending';
    public const ANALYZED = 'analyzed';

    /** @var array<string, mixed>|null */
    private ?array $analysisResult = null;

    /** @param list<RecordedEvent> $events the stream, in version order */
    public function __construct(
        private readonly string $contentId,
        private readonly array $events,
    ) {
        foreach ($events as $event) {
            if ($event->eventType === Events::ANALYZED) {
                $data = $event->decodedData();
                $this->analysisResult = is_array($data['analysis_result'] ?? null) ? $data['analysis_result'] : [];
            }
        }
    }

    /** @return array<string, mixed> */
    public function toArray(): array
    {
        return [
            'content_id' => $this->contentId,
            'version' => $this->events === [] ? 0 : $this->events[array_key_last($this->events)]->version,
            'status' => $this->analysisResult === null ? self::PENDING : self::ANALYZED,
            'analysis_result' => $this->analysisResult,
            'events' => array_map(static fn (RecordedEvent $e): array => [
                'event_id' => $e->eventId,
                'event_type' => $e->eventType,
                'version' => $e->version,
                'created_at' => $e->createdAt,
                'data' => self::decode($e),
            ], $this->events),
        ];
    }

    /** decode returns JSON data decoded, anything else as it is. */
    private static function decode(RecordedEvent $e): mixed
    {
        try {
            return $e->decodedData();
        } catch (\JsonException) {
            return $e->data;
        }
    }
}
