<?php

declare(strict_types=1);

namespace EventSidecar\Client\Exception;

/**
 * EventStoreException is the base of every error the client throws. Its
 * connectCode is the Connect error code the sidecar answered with (the gRPC
 * status in lower snake case: "aborted", "unavailable", ...), or the one
 * the client assigned to a transport failure.
 */
class EventStoreException extends \RuntimeException
{
    public function __construct(
        string $message,
        public readonly string $connectCode = 'unknown',
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, 0, $previous);
    }

    /**
     * fromConnect maps an error the sidecar answered to its exception. It
     * is the only place that decides which exception a code becomes.
     */
    public static function fromConnect(string $code, string $message): self
    {
        return match ($code) {
            'aborted' => ConcurrencyException::fromMessage($message),
            'invalid_argument', 'resource_exhausted' => new InvalidArgumentException($message, $code),
            'not_found' => new NotFoundException($message, $code),
            'unavailable' => new UnavailableException($message, $code),
            'deadline_exceeded' => new TimeoutException($message, $code),
            default => new self($message, $code),
        };
    }
}
