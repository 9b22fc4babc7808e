<?php

declare(strict_types=1);

namespace EventSidecar\Client;

use EventSidecar\Client\Exception\EventStoreException;
use EventSidecar\Client\Exception\TimeoutException;
use EventSidecar\Client\Exception\UnavailableException;

/**
 * ConnectTransport calls the sidecar's methods in the Connect protocol with
 * JSON over HTTP/1.1, through ext-curl. A unary method is a POST of the
 * request as application/json. A server-streaming method is a POST of
 * application/connect+json, where the request and every response message
 * travel in an envelope: one byte of flags, four bytes of length (big
 * endian), the JSON; the last envelope is flagged as the end of the stream
 * and holds the error, if any.
 *
 * @internal the client's plumbing; use EventStoreClient
 */
final class ConnectTransport
{
    private const FLAG_COMPRESSED = 0x01;
    private const FLAG_END_STREAM = 0x02;
    /** The client's own deadline exceeds the sidecar's by this much, so
     *  that the sidecar's answer to a late call arrives. */
    private const DEADLINE_MARGIN_MS = 500;

    private ?\CurlHandle $curl = null;

    /**
     * @param string $baseUrl the sidecar's HTTP address, http://host:port
     * @param float $connectTimeout seconds to wait for the TCP connection
     */
    public function __construct(
        private readonly string $baseUrl,
        private readonly float $connectTimeout,
    ) {
    }

    /**
     * unary calls a unary method and returns its response message.
     *
     * @param string $procedure service and method: "eventstore.EventStoreService/GetStream"
     * @param array<string, mixed> $request
     * @return array<string, mixed>
     */
    public function unary(string $procedure, array $request, float $timeout): array
    {
        [$status, $body] = $this->post($procedure, 'application/json', self::encode($request), $timeout);
        if ($status !== 200) {
            throw self::httpError($status, $body);
        }

        return self::decode($body);
    }

    /**
     * serverStream calls a server-streaming method and returns every
     * response message once the stream ended.
     *
     * @param array<string, mixed> $request
     * @return list<array<string, mixed>>
     */
    public function serverStream(string $procedure, array $request, float $timeout): array
    {
        $json = self::encode($request);
        $envelope = pack('CN', 0, strlen($json)) . $json;
        [$status, $body] = $this->post($procedure, 'application/connect+json', $envelope, $timeout);
        if ($status !== 200) {
            throw self::httpError($status, $body);
        }

        $messages = [];
        $pos = 0;
        $length = strlen($body);
        while ($pos + 5 <= $length) {
            ['flags' => $flags, 'size' => $size] = unpack('Cflags/Nsize', $body, $pos);
            $pos += 5;
            if ($pos + $size > $length) {
                break;
            }
            $payload = substr($body, $pos, $size);
            $pos += $size;
            if (($flags & self::FLAG_COMPRESSED) !== 0) {
                throw new EventStoreException('the sidecar sent a compressed message, which the client did not ask for', 'internal');
            }
            if (($flags & self::FLAG_END_STREAM) !== 0) {
                $end = self::decode($payload);
                if (isset($end['error']) && is_array($end['error'])) {
                    throw self::connectError($end['error']);
                }

                return $messages;
            }
            $messages[] = self::decode($payload);
        }

        throw new UnavailableException("the stream of $procedure ended without its end message", 'unavailable');
    }

    /**
     * post sends one request and returns the HTTP status and the body.
     *
     * @return array{int, string}
     */
    private function post(string $procedure, string $contentType, string $body, float $timeout): array
    {
        $timeoutMs = max(1, (int) ceil($timeout * 1000));
        $curl = $this->handle();
        curl_setopt_array($curl, [
            CURLOPT_URL => rtrim($this->baseUrl, '/') . '/' . $procedure,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTP_VERSION => CURL_HTTP_VERSION_1_1,
            CURLOPT_CONNECTTIMEOUT_MS => max(1, (int) ceil($this->connectTimeout * 1000)),
            CURLOPT_TIMEOUT_MS => $timeoutMs + self::DEADLINE_MARGIN_MS,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_HTTPHEADER => [
                'Content-Type: ' . $contentType,
                'Connect-Protocol-Version: 1',
                'Connect-Timeout-Ms: ' . $timeoutMs,
                // curl waits for "100 Continue" before larger bodies.
                'Expect:',
            ],
        ]);
        $response = curl_exec($curl);
        if ($response === false) {
            throw self::curlError($curl, $procedure);
        }

        return [(int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE), (string) $response];
    }

    /** handle returns the curl handle, kept so that connections are reused. */
    private function handle(): \CurlHandle
    {
        if ($this->curl === null) {
            $this->curl = curl_init();
        } else {
            curl_reset($this->curl);
        }

        return $this->curl;
    }

    private static function curlError(\CurlHandle $curl, string $procedure): EventStoreException
    {
        $errno = curl_errno($curl);
        $message = "$procedure: " . curl_error($curl);
        $connected = (float) curl_getinfo($curl, CURLINFO_CONNECT_TIME) > 0.0;
        if ($errno === CURLE_OPERATION_TIMEDOUT && $connected) {
            return new TimeoutException($message, 'deadline_exceeded');
        }

        // Not connected, or the connection broke: the sidecar is not there.
        return new UnavailableException($message, 'unavailable');
    }

    /**
     * httpError reads an error response: Connect's {"code", "message"}, or,
     * from something that is not the sidecar, the code Connect assigns to
     * the HTTP status.
     */
    private static function httpError(int $status, string $body): EventStoreException
    {
        $error = json_decode($body, true);
        if (is_array($error) && isset($error['code']) && is_string($error['code'])) {
            return self::connectError($error);
        }
        $code = match ($status) {
            429, 502, 503, 504 => 'unavailable',
            400 => 'internal',
            401 => 'unauthenticated',
            403 => 'permission_denied',
            404 => 'unimplemented',
            default => 'unknown',
        };

        return EventStoreException::fromConnect($code, "HTTP $status: " . substr(trim($body), 0, 200));
    }

    /** @param array<string, mixed> $error */
    private static function connectError(array $error): EventStoreException
    {
        return EventStoreException::fromConnect(
            (string) ($error['code'] ?? 'unknown'),
            (string) ($error['message'] ?? ''),
        );
    }

    /** @param array<string, mixed> $message */
    private static function encode(array $message): string
    {
        // An empty PHP array would encode as a JSON list.
        return $message === [] ? '{}' : json_encode($message, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
    }

    /** @return array<string, mixed> */
    private static function decode(string $json): array
    {
        try {
            $value = json_decode($json, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new EventStoreException('the sidecar answered with malformed JSON: ' . $e->getMessage(), 'internal', $e);
        }
        if (!is_array($value)) {
            throw new EventStoreException('the sidecar answered with JSON that is not an object', 'internal');
        }

        return $value;
    }
}
