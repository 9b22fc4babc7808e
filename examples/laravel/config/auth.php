<?php

declare(strict_types=1);

// No route authenticates; author_id comes with the request.

return [
    'defaults' => ['guard' => 'api'],
    'guards' => [],
    'providers' => [],
];
