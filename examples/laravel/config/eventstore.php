<?php

declare(strict_types=1);

// The event-store sidecar beside this application.

return [
    // The sidecar's HTTP address (its SIDECAR_HTTP_ADDR).
    'url' => env('EVENTSTORE_URL', 'http://127.0.0.1:8080'),
    // Seconds one call may take; the sidecar gets the same deadline.
    'timeout' => (float) env('EVENTSTORE_TIMEOUT', 5.0),
    // Seconds to wait for a connection to the sidecar on localhost.
    'connect_timeout' => (float) env('EVENTSTORE_CONNECT_TIMEOUT', 1.0),
];
