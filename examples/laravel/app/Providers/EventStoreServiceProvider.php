<?php

declare(strict_types=1);

namespace App\Providers;

use EventSidecar\Client\EventStoreClient;
use Illuminate\Contracts\Foundation\Application;
use Illuminate\Support\ServiceProvider;

/**
 * EventStoreServiceProvider registers one EventStoreClient per application,
 * configured by config/eventstore.php.
 */
final class EventStoreServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->app->singleton(EventStoreClient::class, static function (Application $app): EventStoreClient {
            $config = $app['config'];

            return new EventStoreClient(
                (string) $config->get('eventstore.url'),
                (float) $config->get('eventstore.timeout'),
                (float) $config->get('eventstore.connect_timeout'),
            );
        });
    }
}
