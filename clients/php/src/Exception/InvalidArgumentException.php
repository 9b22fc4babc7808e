<?php

declare(strict_types=1);

namespace EventSidecar\Client\Exception;

/**
 * InvalidArgumentException is a request the sidecar refused as malformed
 * ("invalid_argument": the message names the field) or too large
 * ("resource_exhausted"). Nothing was stored; sending it again fails again.
 */
final class InvalidArgumentException extends EventStoreException
{
}
