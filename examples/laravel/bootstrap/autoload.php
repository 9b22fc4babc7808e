<?php

declare(strict_types=1);

// Loads the application without Composer: Debian's Laravel framework
// (php-laravel-framework, on PHP's include path), the event-store client
// from clients/php, and a PSR-4 autoloader for this app's App\ namespace.

require_once 'Illuminate/autoload.php';
require_once getenv('EVENTSTORE_CLIENT_AUTOLOAD') ?: __DIR__ . '/../../../clients/php/src/autoload.php';

spl_autoload_register(static function (string $class): void {
    if (!str_starts_with($class, 'App\\')) {
        return;
    }
    $file = __DIR__ . '/../app/' . str_replace('\\', '/', substr($class, 4)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
