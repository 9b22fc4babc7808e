<?php

declare(strict_types=1);

// Loads the client without Composer: a PSR-4 autoloader for
// EventSidecar\Client\ over this folder, and Debian's ramsey/uuid
// (php-ramsey-uuid) from the include path. With Composer, use the
// autoloader that composer.json declares instead.

if (!class_exists(\Ramsey\Uuid\Uuid::class)) {
    require_once 'Ramsey/Uuid/autoload.php';
}

spl_autoload_register(static function (string $class): void {
    $prefix = 'EventSidecar\\Client\\';
    if (!str_starts_with($class, $prefix)) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
