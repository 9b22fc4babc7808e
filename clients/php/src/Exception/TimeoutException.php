<?php

declare(strict_types=1);

namespace EventSidecar\Client\Exception;

/**
 * TimeoutException means the call did not finish in time. The outcome of
 * an append is then unknown: send the same events (same ids) again, and the
 * sidecar answers with the original result if they landed.
 */
final class TimeoutException extends EventStoreException
{
}
