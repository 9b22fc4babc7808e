<?php

declare(strict_types=1);

namespace EventSidecar\Client;

use EventSidecar\Client\Exception\ConcurrencyException;
use EventSidecar\Client\Exception\EventStoreException;
use EventSidecar\Client\Exception\InvalidArgumentException;
use EventSidecar\Client\Exception\NotFoundException;
use EventSidecar\Client\Exception\TimeoutException;
use EventSidecar\Client\Exception\UnavailableException;

/**
 * EventStoreClient talks to the event-store sidecar on localhost over its
 * JSON-over-HTTP interface (SIDECAR_HTTP_ADDR), so that PHP needs no gRPC
 * extension. Every method throws an EventStoreException subclass on
 * failure; see each method.
 */
final class EventStoreClient
{
    /** The stream must not exist yet; its first event gets version 1. */
    public const NO_STREAM = 0;
    /** Append whatever the stream's version is. */
    public const ANY = -1;
    /** The stream must exist (have at least one event), at any version. */
    public const STREAM_EXISTS = -2;

    private const SERVICE = 'eventstore.EventStoreService/';
    private const HEALTH = 'grpc.health.v1.Health/Check';

    private readonly ConnectTransport $transport;

    /**
     * @param string $baseUrl the sidecar's HTTP address; default
     *     http://127.0.0.1:8080, the sidecar's default
     * @param float $timeout seconds a call may take, default 5; the sidecar
     *     gets the same deadline
     * @param float $connectTimeout seconds to wait for a connection,
     *     default 1: the sidecar is on localhost
     */
    public function __construct(
        string $baseUrl = 'http://127.0.0.1:8080',
        private readonly float $timeout = 5.0,
        float $connectTimeout = 1.0,
    ) {
        $this->transport = new ConnectTransport($baseUrl, $connectTimeout);
    }

    /**
     * appendToStream appends events to one stream, all or none, if the
     * stream's version matches the expectation.
     *
     * @param int $expectedVersion the number of events the stream has, or
     *     NO_STREAM, ANY or STREAM_EXISTS
     * @param list<NewEvent> $events at least one
     * @throws ConcurrencyException the stream's version is another
     * @throws InvalidArgumentException a malformed or too large append
     * @throws UnavailableException the sidecar, Kafka or Redis is not
     *     reachable; sending the same events again is safe
     * @throws TimeoutException the outcome is unknown; sending the same
     *     events again is safe
     */
    public function appendToStream(string $streamName, int $expectedVersion, array $events): AppendResult
    {
        $request = [
            'streamName' => $streamName,
            'expectedVersion' => $expectedVersion,
            'events' => array_map(static fn (NewEvent $e): array => $e->toJson(), $events),
        ];
        $response = $this->transport->unary(self::SERVICE . 'AppendToStream', $request, $this->timeout);

        return new AppendResult(
            (int) ($response['currentVersion'] ?? 0),
            (int) ($response['partition'] ?? 0),
            (int) ($response['offset'] ?? 0),
        );
    }

    /**
     * readStream returns a stream's events in version order.
     *
     * @param int $fromVersion the first version returned; 0 means the first
     *     event (forwards) or the last (backwards)
     * @param int $maxCount at most this many events; 0 means all
     * @param bool $backwards descending versions instead of ascending
     * @return list<RecordedEvent>
     * @throws NotFoundException the stream has no events
     * @throws InvalidArgumentException bad bounds
     * @throws UnavailableException|TimeoutException
     */
    public function readStream(
        string $streamName,
        int $fromVersion = 0,
        int $maxCount = 0,
        bool $backwards = false,
    ): array {
        $request = [
            'streamName' => $streamName,
            'fromVersion' => $fromVersion,
            'maxCount' => $maxCount,
            'direction' => $backwards ? 'READ_DIRECTION_BACKWARDS' : 'READ_DIRECTION_FORWARDS',
        ];
        $messages = $this->transport->serverStream(self::SERVICE . 'ReadStream', $request, $this->timeout);

        return array_map(static fn (array $m): RecordedEvent => RecordedEvent::fromJson($m), $messages);
    }

    /**
     * getStream returns a stream's version and partition without reading
     * its events.
     *
     * @throws NotFoundException the stream has no events
     * @throws UnavailableException|TimeoutException
     */
    public function getStream(string $streamName): StreamInfo
    {
        $response = $this->transport->unary(self::SERVICE . 'GetStream', ['streamName' => $streamName], $this->timeout);

        return new StreamInfo(
            (string) ($response['streamName'] ?? $streamName),
            (int) ($response['currentVersion'] ?? 0),
            (int) ($response['partition'] ?? 0),
        );
    }

    /**
     * streamVersion returns the number of events in a stream: 0 for a stream
     * without events, which is what NO_STREAM expects.
     *
     * @throws UnavailableException|TimeoutException
     */
    public function streamVersion(string $streamName): int
    {
        try {
            return $this->getStream($streamName)->currentVersion;
        } catch (NotFoundException) {
            return 0;
        }
    }

    /**
     * waitReady polls the sidecar's health check until it reports SERVING:
     * it then reaches Kafka and Redis and its index is ready. Call it
     * before the first call after the sidecar started.
     *
     * @param float $timeout seconds to wait at most, default 30
     * @throws TimeoutException the sidecar was not ready in time; the
     *     message says what it answered last
     */
    public function waitReady(float $timeout = 30.0): void
    {
        $deadline = microtime(true) + $timeout;
        $delay = 0.05;
        while (true) {
            $left = $deadline - microtime(true);
            try {
                $response = $this->transport->unary(self::HEALTH, [], max(0.1, min(2.0, $left)));
                $status = (string) ($response['status'] ?? 'UNKNOWN');
                if ($status === 'SERVING') {
                    return;
                }
                $last = "the sidecar reports $status";
            } catch (EventStoreException $e) {
                $last = $e->getMessage();
            }
            if (microtime(true) + $delay >= $deadline) {
                throw new TimeoutException(sprintf('the sidecar was not ready within %.1fs: %s', $timeout, $last), 'deadline_exceeded');
            }
            usleep((int) ($delay * 1_000_000));
            $delay = min(2 * $delay, 1.0);
        }
    }
}
