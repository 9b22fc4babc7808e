<?php

declare(strict_types=1);

// Loads the application and its tests, starts one sidecar for the whole
// run (see clients/php/tests/Support/SidecarProcess.php) and points the
// application at it through EVENTSTORE_URL.

use EventSidecar\Client\Tests\Support\SidecarProcess;

require __DIR__ . '/../bootstrap/autoload.php';
require __DIR__ . '/../../../clients/php/tests/Support/SidecarProcess.php';
require __DIR__ . '/TestCase.php';

$sidecar = SidecarProcess::start('phpunit-laravel');
putenv('EVENTSTORE_URL=' . $sidecar->url);
$_ENV['EVENTSTORE_URL'] = $_SERVER['EVENTSTORE_URL'] = $sidecar->url;
fwrite(STDERR, "sidecar: {$sidecar->url}, topic {$sidecar->topic}\n");
