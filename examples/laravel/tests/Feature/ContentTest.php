<?php

declare(strict_types=1);

namespace Tests\Feature;

use EventSidecar\Client\EventStoreClient;
use EventSidecar\Client\NewEvent;
use Illuminate\Support\Str;
use Ramsey\Uuid\Uuid;
use Tests\TestCase;

/**
 * The API's routes against the sidecar the bootstrap started.
 */
final class ContentTest extends TestCase
{
    protected function tearDown(): void
    {
        Str::createUuidsNormally();
        parent::tearDown();
    }

    private function client(): EventStoreClient
    {
        return $this->app->make(EventStoreClient::class);
    }

    /** @return array<string, mixed> the 202 answer */
    private function submit(string $content = 'Alice met Bob in Paris.'): array
    {
        $body = ['content' => $content, 'author_id' => 'author-7'];

        return $this->postJson('/content', $body, ['X-Request-Id' => 'req-42'])
            ->assertStatus(202)
            ->json();
    }

    public function testSubmitRecordsContentSubmitted(): void
    {
        $answer = $this->submit();
        self::assertTrue(Uuid::isValid($answer['content_id']), $answer['content_id']);
        self::assertSame(1, $answer['version']);

        $events = $this->client()->readStream($answer['content_id']);
        self::assertCount(1, $events);
        self::assertSame('ContentSubmitted', $events[0]->eventType);
        self::assertSame(
            ['content_id' => $answer['content_id'], 'author_id' => 'author-7', 'content' => 'Alice met Bob in Paris.'],
            $events[0]->decodedData(),
        );
        self::assertSame(
            ['ip' => '127.0.0.1', 'user_agent' => 'Symfony', 'request_id' => 'req-42', 'schema_version' => 1],
            $events[0]->decodedMetadata(),
        );
    }

    public function testSubmittedContentIsPending(): void
    {
        $answer = $this->submit();

        $this->getJson('/content/' . $answer['content_id'])
            ->assertStatus(200)
            ->assertJson([
                'content_id' => $answer['content_id'],
                'version' => 1,
                'status' => 'pending',
                'analysis_result' => null,
                'events' => [[
                    'event_type' => 'ContentSubmitted',
                    'version' => 1,
                    'data' => ['content_id' => $answer['content_id'], 'author_id' => 'author-7'],
                ]],
            ]);
    }

    public function testAnalyzedContentShowsTheResult(): void
    {
        $answer = $this->submit();
        $id = $answer['content_id'];
        $submitted = $this->client()->readStream($id)[0];
        $result = ['entities' => [['text' => 'Paris', 'label' => 'GPE']], 'is_toxic' => false, 'token_count' => 6];
        // What the analyzer appends after handling ContentSubmitted.
        $this->client()->appendToStream($id, 1, [new NewEvent('ContentAnalyzed', [
            'content_id' => $id, 'source_event_id' => $submitted->eventId, 'analysis_result' => $result,
        ], ['schema_version' => 1])]);

        $this->getJson('/content/' . $id)
            ->assertStatus(200)
            ->assertJson([
                'content_id' => $id,
                'version' => 2,
                'status' => 'analyzed',
                'analysis_result' => $result,
                'events' => [['event_type' => 'ContentSubmitted'], ['event_type' => 'ContentAnalyzed', 'version' => 2]],
            ]);
    }

    public function testUnknownContentIsNotFound(): void
    {
        $this->getJson('/content/' . Uuid::uuid4()->toString())->assertStatus(404)->assertJsonStructure(['message']);
        $this->getJson('/content/not-a-uuid')->assertStatus(404);
    }

    /** @return array<string, array{array<string, mixed>, string}> */
    public static function invalidSubmissions(): array
    {
        return [
            'no content' => [['author_id' => 'a'], 'content'],
            'empty content' => [['content' => '', 'author_id' => 'a'], 'content'],
            'content not a string' => [['content' => ['x'], 'author_id' => 'a'], 'content'],
            'content too long' => [['content' => str_repeat('é', 1001), 'author_id' => 'a'], 'content'],
            'no author' => [['content' => 'hello'], 'author_id'],
            'author not a string' => [['content' => 'hello', 'author_id' => 7], 'author_id'],
        ];
    }

    /**
     * @dataProvider invalidSubmissions
     * @param array<string, mixed> $body
     */
    public function testInvalidSubmission(array $body, string $field): void
    {
        $this->postJson('/content', $body)->assertStatus(422)->assertJsonValidationErrors([$field]);
    }

    public function testContentAtTheLengthLimitIsAccepted(): void
    {
        $this->submit(str_repeat('é', 1000));
        $this->addToAssertionCount(1);
    }

    public function testValidationNeverRedirects(): void
    {
        // A form post that does not ask for JSON still gets JSON.
        $this->post('/content', ['author_id' => 'a'])
            ->assertStatus(422)
            ->assertHeader('Content-Type', 'application/json')
            ->assertJsonValidationErrors(['content']);
    }

    public function testConflictIs409(): void
    {
        $id = Uuid::uuid4()->toString();
        Str::createUuidsUsing(static fn () => Uuid::fromString($id));
        $this->submit();

        // A second submission with the same content id finds the stream.
        $this->postJson('/content', ['content' => 'again', 'author_id' => 'a'])
            ->assertStatus(409)
            ->assertJson(['expected_version' => 0, 'actual_version' => 1]);
        self::assertCount(1, $this->client()->readStream($id));
    }

    public function testUnreachableSidecarIs503(): void
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        $name = (string) stream_socket_get_name($socket, false);
        fclose($socket);
        config(['eventstore.url' => 'http://' . $name]);

        $this->postJson('/content', ['content' => 'hello', 'author_id' => 'a'])
            ->assertStatus(503)
            ->assertHeader('Retry-After');
        $this->getJson('/content/' . Uuid::uuid4()->toString())->assertStatus(503);
    }
}
