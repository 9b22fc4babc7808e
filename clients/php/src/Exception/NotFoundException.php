<?php

declare(strict_types=1);

namespace EventSidecar\Client\Exception;

/**
 * NotFoundException means the stream has no events.
 */
final class NotFoundException extends EventStoreException
{
}
