<?php

declare(strict_types=1);

namespace EventSidecar\Client;

/**
 * AppendResult answers a successful append.
 */
final class AppendResult
{
    /**
     * @param int $currentVersion the stream's version after the append: the
     *     version of its last event
     * @param int $partition the Kafka partition that holds the stream
     * @param int $offset the Kafka offset of the record of the append; -1
     *     for a retry of an append that had landed, answered from the index
     */
    public function __construct(
        public readonly int $currentVersion,
        public readonly int $partition,
        public readonly int $offset,
    ) {
    }
}
