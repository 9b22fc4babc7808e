<?php

declare(strict_types=1);

namespace EventSidecar\Client;

use EventSidecar\Client\Exception\EventStoreException;

/**
 * RecordedEvent is an event as the store holds it.
 */
final class RecordedEvent
{
    /**
     * @param string $eventId the event's unique id
     * @param string $streamName the stream (aggregate id) it belongs to
     * @param string $eventType kind of the event
     * @param int $version position in its stream, from 1
     * @param string $data the payload as appended
     * @param string $metadata the metadata (JSON text) as appended
     * @param int $createdAt Unix seconds, UTC
     * @param int $partition the Kafka partition that holds the stream
     * @param int $offset the Kafka offset of the record that holds the event
     */
    public function __construct(
        public readonly string $eventId,
        public readonly string $streamName,
        public readonly string $eventType,
        public readonly int $version,
        public readonly string $data,
        public readonly string $metadata,
        public readonly int $createdAt,
        public readonly int $partition,
        public readonly int $offset,
    ) {
    }

    /**
     * fromJson reads the contract's Event message in JSON.
     *
     * @param array<string, mixed> $e
     */
    public static function fromJson(array $e): self
    {
        $data = base64_decode((string) ($e['data'] ?? ''), true);
        if ($data === false) {
            throw new EventStoreException('the sidecar sent event data that is not base64', 'internal');
        }

        return new self(
            (string) ($e['eventId'] ?? ''),
            (string) ($e['aggregateId'] ?? ''),
            (string) ($e['eventType'] ?? ''),
            (int) ($e['aggregateVersion'] ?? 0),
            $data,
            (string) ($e['metadata'] ?? ''),
            (int) ($e['createdAt'] ?? 0),
            (int) ($e['partition'] ?? 0),
            (int) ($e['offset'] ?? 0),
        );
    }

    /**
     * decodedData returns the payload decoded as JSON.
     *
     * @throws \JsonException when the payload is not JSON
     */
    public function decodedData(): mixed
    {
        return json_decode($this->data, true, 512, JSON_THROW_ON_ERROR);
    }

    /**
     * decodedMetadata returns the metadata decoded as JSON; an empty array
     * when there is none.
     *
     * @throws \JsonException when the metadata is not JSON
     */
    public function decodedMetadata(): mixed
    {
        return $this->metadata === '' ? [] : json_decode($this->metadata, true, 512, JSON_THROW_ON_ERROR);
    }
}
