<?php

declare(strict_types=1);

namespace EventSidecar\Client;

/**
 * StreamInfo describes a stream without its events.
 */
final class StreamInfo
{
    /**
     * @param string $streamName the stream
     * @param int $currentVersion the number of events in the stream
     * @param int $partition the Kafka partition every record of the stream is in
     */
    public function __construct(
        public readonly string $streamName,
        public readonly int $currentVersion,
        public readonly int $partition,
    ) {
    }
}
