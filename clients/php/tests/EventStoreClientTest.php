<?php

declare(strict_types=1);

namespace EventSidecar\Client\Tests;

use EventSidecar\Client\EventStoreClient;
use EventSidecar\Client\Exception\ConcurrencyException;
use EventSidecar\Client\Exception\InvalidArgumentException;
use EventSidecar\Client\Exception\NotFoundException;
use EventSidecar\Client\Exception\TimeoutException;
use EventSidecar\Client\Exception\UnavailableException;
use EventSidecar\Client\NewEvent;
use PHPUnit\Framework\TestCase;
use Ramsey\Uuid\Uuid;

/**
 * The client against the sidecar the bootstrap started.
 */
final class EventStoreClientTest extends TestCase
{
    private EventStoreClient $client;

    protected function setUp(): void
    {
        $this->client = new EventStoreClient((string) getenv('EVENTSTORE_URL'), timeout: 30.0);
    }

    private static function stream(): string
    {
        return 'php-' . Uuid::uuid4()->toString();
    }

    /** @return list<NewEvent> */
    private static function events(int $n, string $type = 'Submitted'): array
    {
        $events = [];
        for ($i = 1; $i <= $n; $i++) {
            $events[] = new NewEvent($type, ['n' => $i], ['schema_version' => 1]);
        }

        return $events;
    }

    /**
     * @return array<string, array{int, int, int, int}> existing events,
     *     expected version, events appended, version after (0: a conflict)
     */
    public static function expectations(): array
    {
        return [
            'no stream on a new stream' => [0, EventStoreClient::NO_STREAM, 1, 1],
            'no stream on an existing stream' => [2, EventStoreClient::NO_STREAM, 1, 0],
            'exact version' => [3, 3, 2, 5],
            'stale version' => [3, 2, 1, 0],
            'any on a new stream' => [0, EventStoreClient::ANY, 3, 3],
            'any on an existing stream' => [2, EventStoreClient::ANY, 1, 3],
            'stream exists on a new stream' => [0, EventStoreClient::STREAM_EXISTS, 1, 0],
            'stream exists on an existing stream' => [1, EventStoreClient::STREAM_EXISTS, 2, 3],
        ];
    }

    /** @dataProvider expectations */
    public function testExpectedVersions(int $existing, int $expected, int $count, int $want): void
    {
        $stream = self::stream();
        if ($existing > 0) {
            $this->client->appendToStream($stream, EventStoreClient::NO_STREAM, self::events($existing));
        }

        if ($want === 0) {
            try {
                $this->client->appendToStream($stream, $expected, self::events($count));
                self::fail('the append succeeded; want a ConcurrencyException');
            } catch (ConcurrencyException $e) {
                self::assertSame('aborted', $e->connectCode);
                self::assertSame($expected, $e->expectedVersion, $e->getMessage());
                self::assertSame($existing, $e->actualVersion, $e->getMessage());
            }
            self::assertSame($existing, $this->client->streamVersion($stream));

            return;
        }

        $result = $this->client->appendToStream($stream, $expected, self::events($count));
        self::assertSame($want, $result->currentVersion);
        self::assertSame($want, $this->client->getStream($stream)->currentVersion);
    }

    public function testReadStreamReturnsWhatWasAppended(): void
    {
        $stream = self::stream();
        $first = new NewEvent('ContentSubmitted', ['text' => "h\u{e9}llo \"world\""], ['request_id' => 'r-1']);
        $second = new NewEvent('Binary', "\x00\xff raw", '');
        $this->client->appendToStream($stream, EventStoreClient::NO_STREAM, [$first]);
        $result = $this->client->appendToStream($stream, 1, [$second]);

        $events = $this->client->readStream($stream);
        self::assertCount(2, $events);
        [$a, $b] = $events;
        self::assertSame(
            [$first->eventId, $stream, 'ContentSubmitted', 1],
            [$a->eventId, $a->streamName, $a->eventType, $a->version],
        );
        self::assertSame(['text' => "h\u{e9}llo \"world\""], $a->decodedData());
        self::assertSame(['request_id' => 'r-1'], $a->decodedMetadata());
        self::assertGreaterThan(0, $a->createdAt);
        self::assertSame([$second->eventId, 2, "\x00\xff raw"], [$b->eventId, $b->version, $b->data]);
        self::assertSame($result->offset, $b->offset);
        self::assertSame($result->partition, $b->partition);
    }

    public function testReadStreamRanges(): void
    {
        $stream = self::stream();
        $this->client->appendToStream($stream, EventStoreClient::NO_STREAM, self::events(5));
        $versions = static fn (array $events): array => array_map(static fn ($e) => $e->version, $events);

        self::assertSame([2, 3], $versions($this->client->readStream($stream, fromVersion: 2, maxCount: 2)));
        self::assertSame([5, 4, 3], $versions($this->client->readStream($stream, maxCount: 3, backwards: true)));
        self::assertSame([], $this->client->readStream($stream, fromVersion: 9));
    }

    public function testReadStreamOfAMissingStream(): void
    {
        $this->expectException(NotFoundException::class);
        $this->client->readStream(self::stream());
    }

    public function testReadStreamWithBadBounds(): void
    {
        $this->expectException(InvalidArgumentException::class);
        $this->expectExceptionMessage('from_version');
        $this->client->readStream(self::stream(), fromVersion: -1);
    }

    public function testGetStreamOfAMissingStream(): void
    {
        $stream = self::stream();
        self::assertSame(0, $this->client->streamVersion($stream));
        $this->expectException(NotFoundException::class);
        $this->client->getStream($stream);
    }

    public function testRetryOfALandedAppendStoresNothing(): void
    {
        $stream = self::stream();
        $events = self::events(2);
        $first = $this->client->appendToStream($stream, EventStoreClient::NO_STREAM, $events);
        $again = $this->client->appendToStream($stream, EventStoreClient::NO_STREAM, $events);

        self::assertSame(2, $again->currentVersion);
        self::assertSame($first->partition, $again->partition);
        self::assertCount(2, $this->client->readStream($stream));
    }

    /** @return array<string, array{string, list<NewEvent>}> */
    public static function invalidAppends(): array
    {
        return [
            'no events' => ['events', []],
            'no event type' => ['event_type', [new NewEvent('')]],
            'metadata not JSON' => ['metadata', [new NewEvent('Submitted', '{}', 'not json')]],
        ];
    }

    /**
     * @dataProvider invalidAppends
     * @param list<NewEvent> $events
     */
    public function testInvalidAppend(string $field, array $events): void
    {
        $stream = self::stream();
        try {
            $this->client->appendToStream($stream, EventStoreClient::NO_STREAM, $events);
            self::fail('the append succeeded; want an InvalidArgumentException');
        } catch (InvalidArgumentException $e) {
            self::assertSame('invalid_argument', $e->connectCode);
            self::assertStringContainsString($field, $e->getMessage());
        }
        self::assertSame(0, $this->client->streamVersion($stream));
    }

    public function testInvalidStreamName(): void
    {
        $this->expectException(InvalidArgumentException::class);
        $this->expectExceptionMessage('stream_name');
        $this->client->appendToStream('', EventStoreClient::NO_STREAM, self::events(1));
    }

    public function testUnreachableSidecar(): void
    {
        $client = new EventStoreClient('http://127.0.0.1:' . self::closedPort(), timeout: 2.0);
        $this->expectException(UnavailableException::class);
        $client->appendToStream(self::stream(), EventStoreClient::NO_STREAM, self::events(1));
    }

    public function testWaitReadyGivesUp(): void
    {
        $client = new EventStoreClient('http://127.0.0.1:' . self::closedPort());
        $this->expectException(TimeoutException::class);
        $this->expectExceptionMessage('not ready');
        $client->waitReady(0.3);
    }

    public function testWaitReadyOnAReadySidecar(): void
    {
        $this->client->waitReady(5.0);
        $this->addToAssertionCount(1);
    }

    /** @return array<string, array{string, ?int, ?int}> */
    public static function conflictMessages(): array
    {
        return [
            'versions' => ['stream "a": expected version 3, actual version 5', 3, 5],
            'any' => ['stream "a": expected version any, actual version 0', EventStoreClient::ANY, 0],
            'stream exists' => ['stream "a": expected version stream exists, actual version 0', EventStoreClient::STREAM_EXISTS, 0],
            'a name that looks like a message' => ['stream "expected version 1, actual version 2\" x": expected version 7, actual version 8', 7, 8],
            'another message' => ['something else', null, null],
        ];
    }

    /** @dataProvider conflictMessages */
    public function testConflictMessage(string $message, ?int $expected, ?int $actual): void
    {
        $e = ConcurrencyException::fromMessage($message);
        self::assertSame([$expected, $actual, $message], [$e->expectedVersion, $e->actualVersion, $e->getMessage()]);
    }

    /** closedPort returns a loopback port nothing listens on. */
    private static function closedPort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        self::assertNotFalse($socket);
        $name = (string) stream_socket_get_name($socket, false);
        fclose($socket);

        return (int) substr($name, strrpos($name, ':') + 1);
    }
}
