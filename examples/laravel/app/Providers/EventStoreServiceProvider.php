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
        $this->app->singleton(EventStoreClient::class, static fn (Application $app): EventStoreClient => new EventStoreClient(
            (string) $app['config']->get('eventstore.url'),
            (float) $app['config']->get('eventstore.timeout'),
            (float) $app['config']->get('eventstore.connect_timeout'),
        ));
    }
}
