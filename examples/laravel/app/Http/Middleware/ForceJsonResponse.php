<?php

declare(strict_types=1);

namespace App\Http\Middleware;

use Closure;
use Illuminate\Http\Request;

/**
 * ForceJsonResponse makes every request of the API ask for JSON, so that a
 * validation error answers 422 with the errors instead of redirecting.
 */
final class ForceJsonResponse
{
    public function handle(Request $request, Closure $next): mixed
    {
        $request->headers->set('Accept', 'application/json');

        return $next($request);
    }
}
