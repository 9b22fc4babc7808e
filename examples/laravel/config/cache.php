<?php

declare(strict_types=1);

return [
    'default' => env('CACHE_DRIVER', 'array'),
    'stores' => [
        'array' => ['driver' => 'array', 'serialize' => false],
        'file' => ['driver' => 'file', 'path' => storage_path('framework/cache')],
    ],
    'prefix' => 'content_api_cache',
];
