<?php

declare(strict_types=1);

namespace EventSidecar\Client;

use Ramsey\Uuid\Uuid;

/**
 * NewEvent is an event to append. Its id is fixed when it is made, so that
 * sending the same NewEvent again after a timeout is recognised as a retry
 * and stored once.
 */
final class NewEvent
{
    /** The event's unique id: a UUID. */
    public readonly string $eventId;

    /** The payload: JSON text, or any bytes. */
    public readonly string $data;

    /** JSON text with context: request id, user, schema_version. */
    public readonly string $metadata;

    /**
     * @param string $eventType kind of the event, for example "ContentSubmitted"
     * @param string|array<mixed> $data the payload; an array is encoded as JSON
     * @param string|array<mixed> $metadata context; an array is encoded as JSON
     * @param string|null $eventId a UUID; null makes a random (version 4) one.
     *     Derive it from what caused the event (a UUID version 5 of the
     *     source event id, say) to make reprocessing harmless.
     */
    public function __construct(
        public readonly string $eventType,
        string|array $data = '',
        string|array $metadata = '',
        ?string $eventId = null,
    ) {
        $this->data = is_array($data) ? self::json($data) : $data;
        $this->metadata = is_array($metadata) ? self::json($metadata) : $metadata;
        $this->eventId = $eventId ?? Uuid::uuid4()->toString();
    }

    /**
     * toJson returns the event as the contract's Event message in JSON; the
     * sidecar assigns the version, the stream and the time.
     *
     * @return array<string, string>
     */
    public function toJson(): array
    {
        return [
            'eventId' => $this->eventId,
            'eventType' => $this->eventType,
            'data' => base64_encode($this->data),
            'metadata' => $this->metadata,
        ];
    }

    /** @param array<mixed> $value */
    private static function json(array $value): string
    {
        return json_encode($value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    }
}
