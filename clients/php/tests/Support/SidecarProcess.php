<?php

declare(strict_types=1);

namespace EventSidecar\Client\Tests\Support;

use EventSidecar\Client\EventStoreClient;
use EventSidecar\Client\Exception\TimeoutException;

/**
 * SidecarProcess runs the sidecar binary named by SIDECAR_BIN for a test
 * run, on its own free ports, topic and data directory. It inherits the
 * environment, so SIDECAR_KAFKA_BROKERS and SIDECAR_REDIS_URL put it on a
 * real Kafka and Redis; without them it runs embedded.
 */
final class SidecarProcess
{
    /** Seconds to wait for the sidecar to be ready. */
    private const START_TIMEOUT = 60.0;
    /** Seconds to wait after SIGTERM before SIGKILL; above the sidecar's
     *  own shutdown budget (20 s by default). */
    private const STOP_TIMEOUT = 30.0;

    /** @var resource|null */
    private $process;

    private function __construct(
        /** The HTTP address, http://127.0.0.1:port. */
        public readonly string $url,
        /** The event topic of this run. */
        public readonly string $topic,
        private readonly string $dir,
        $process,
    ) {
        $this->process = $process;
    }

    /**
     * start starts the sidecar, waits until it is ready, and stops it when
     * PHP exits.
     */
    public static function start(string $prefix): self
    {
        $binary = (string) getenv('SIDECAR_BIN');
        if ($binary === '' || !is_executable($binary)) {
            throw new \RuntimeException("SIDECAR_BIN='$binary' is not an executable file: build the sidecar (make build) and set SIDECAR_BIN to .bin/sidecar");
        }
        $dir = sys_get_temp_dir() . '/' . $prefix . '-' . bin2hex(random_bytes(6));
        if (!mkdir($dir . '/data', 0o700, true)) {
            throw new \RuntimeException("cannot create $dir");
        }
        $httpAddr = '127.0.0.1:' . self::freePort();
        $topic = $prefix . '-' . bin2hex(random_bytes(6));

        $env = getenv();
        // The harness's own variable, not a setting of the sidecar.
        unset($env['SIDECAR_BIN']);
        // An empty value means unset: the sidecar then runs embedded.
        foreach (['SIDECAR_KAFKA_BROKERS', 'SIDECAR_REDIS_URL'] as $name) {
            if (($env[$name] ?? '') === '') {
                unset($env[$name]);
            }
        }
        $env['SIDECAR_GRPC_ADDR'] = '127.0.0.1:' . self::freePort();
        $env['SIDECAR_HTTP_ADDR'] = $httpAddr;
        // Other listeners take ports of their own, so that parallel runs do
        // not collide. An empty value cannot turn them off: proc_open drops
        // empty variables, and the sidecar then takes its defaults.
        $env['SIDECAR_METRICS_ADDR'] = '127.0.0.1:' . self::freePort();
        unset($env['SIDECAR_HEALTH_ADDR']);
        $env['SIDECAR_KAFKA_TOPIC'] = $topic;
        $env['SIDECAR_DATA_DIR'] = $dir . '/data';
        $env['SIDECAR_LOG_FORMAT'] = 'json';

        $log = $dir . '/sidecar.log';
        $io = [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']];
        $process = proc_open([$binary], $io, $pipes, null, $env);
        if ($process === false) {
            throw new \RuntimeException("cannot start $binary");
        }
        $sidecar = new self('http://' . $httpAddr, $topic, $dir, $process);
        register_shutdown_function([$sidecar, 'stop']);

        try {
            (new EventStoreClient($sidecar->url))->waitReady(self::START_TIMEOUT);
        } catch (TimeoutException $e) {
            $status = proc_get_status($process);
            $why = $status['running'] ? $e->getMessage() : 'it exited with status ' . $status['exitcode'];
            throw new \RuntimeException("the sidecar did not get ready: $why; its output:\n" . $sidecar->outputTail());
        }

        return $sidecar;
    }

    /** stop sends SIGTERM, waits bounded, then kills the sidecar. */
    public function stop(): void
    {
        if ($this->process === null) {
            return;
        }
        $process = $this->process;
        $this->process = null;
        $status = proc_get_status($process);
        if ($status['running']) {
            proc_terminate($process, 15);
            $deadline = microtime(true) + self::STOP_TIMEOUT;
            while (($status = proc_get_status($process))['running'] && microtime(true) < $deadline) {
                usleep(50_000);
            }
            if ($status['running']) {
                fwrite(STDERR, "sidecar did not exit within " . self::STOP_TIMEOUT . "s of SIGTERM; killed it\n");
                proc_terminate($process, 9);
            }
        }
        proc_close($process);
        if (!$status['running'] && $status['exitcode'] > 0) {
            fwrite(STDERR, "sidecar exited with status {$status['exitcode']}; its output:\n" . $this->outputTail());
        }
        self::remove($this->dir);
    }

    /** outputTail returns the last lines the sidecar wrote. */
    public function outputTail(int $lines = 40): string
    {
        $text = @file_get_contents($this->dir . '/sidecar.log');
        if ($text === false || $text === '') {
            return "(no output)\n";
        }

        return implode("\n", array_slice(explode("\n", rtrim($text)), -$lines)) . "\n";
    }

    private static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0', $errno, $error);
        if ($socket === false) {
            throw new \RuntimeException("no free port: $error");
        }
        $name = stream_socket_get_name($socket, false);
        fclose($socket);

        return (int) substr((string) $name, strrpos((string) $name, ':') + 1);
    }

    private static function remove(string $path): void
    {
        if (is_dir($path) && !is_link($path)) {
            foreach (scandir($path) ?: [] as $entry) {
                if ($entry !== '.' && $entry !== '..') {
                    self::remove($path . '/' . $entry);
                }
            }
            @rmdir($path);
        } elseif (file_exists($path) || is_link($path)) {
            @unlink($path);
        }
    }
}
