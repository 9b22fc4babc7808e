<?php

declare(strict_types=1);

// Starts one sidecar for the whole run (see Support/SidecarProcess.php)
// and publishes its address to the tests as EVENTSTORE_URL.

use EventSidecar\Client\Tests\Support\SidecarProcess;

require __DIR__ . '/../src/autoload.php';
require __DIR__ . '/Support/SidecarProcess.php';

$sidecar = SidecarProcess::start('phpunit-client');
putenv('EVENTSTORE_URL=' . $sidecar->url);
$_ENV['EVENTSTORE_URL'] = $sidecar->url;
fwrite(STDERR, "sidecar: {$sidecar->url}, topic {$sidecar->topic}\n");
