<?php

declare(strict_types=1);

namespace EventSidecar\Client\Exception;

use EventSidecar\Client\EventStoreClient;

/**
 * ConcurrencyException is a failed version check: the stream's version was
 * not the expected one. Nothing was appended. Reload the stream, decide
 * again, and append with the version you loaded.
 */
final class ConcurrencyException extends EventStoreException
{
    /**
     * @param int|null $expectedVersion the expectation of the append: a
     *     version, or EventStoreClient::ANY or STREAM_EXISTS; null when the
     *     message did not name it
     * @param int|null $actualVersion the stream's version when the append
     *     was checked; null when the message did not name it
     */
    public function __construct(
        string $message,
        public readonly ?int $expectedVersion = null,
        public readonly ?int $actualVersion = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, 'aborted', $previous);
    }

    /**
     * fromMessage reads both versions from the sidecar's message, which ends
     * in `expected version 3, actual version 5` (or `expected version any`,
     * `expected version stream exists`).
     */
    public static function fromMessage(string $message): self
    {
        if (preg_match('/expected version (\d+|any|stream exists), actual version (\d+)$/', $message, $m) !== 1) {
            return new self($message);
        }
        $expected = match ($m[1]) {
            'any' => EventStoreClient::ANY,
            'stream exists' => EventStoreClient::STREAM_EXISTS,
            default => (int) $m[1],
        };

        return new self($message, $expected, (int) $m[2]);
    }
}
