<?php

declare(strict_types=1);

// The API renders no views; the view factory still needs its paths.

return [
    'paths' => [resource_path('views')],
    'compiled' => env('VIEW_COMPILED_PATH', storage_path('framework/views')),
];
