<?php

declare(strict_types=1);

namespace App\Http;

use App\Http\Middleware\ForceJsonResponse;
use Illuminate\Foundation\Http\Kernel as HttpKernel;
use Illuminate\Foundation\Http\Middleware\ConvertEmptyStringsToNull;
use Illuminate\Foundation\Http\Middleware\TrimStrings;
use Illuminate\Foundation\Http\Middleware\ValidatePostSize;
use Illuminate\Routing\Middleware\SubstituteBindings;

final class Kernel extends HttpKernel
{
    /** @var list<class-string> */
    protected $middleware = [
        ValidatePostSize::class,
        TrimStrings::class,
        ConvertEmptyStringsToNull::class,
    ];

    /** @var array<string, list<class-string>> */
    protected $middlewareGroups = [
        'api' => [
            ForceJsonResponse::class,
            SubstituteBindings::class,
        ],
    ];
}
