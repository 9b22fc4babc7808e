<?php

declare(strict_types=1);

namespace EventSidecar\Client\Exception;

/**
 * UnavailableException means the sidecar could not be reached, or it could
 * not reach Kafka or Redis, or its index is being rebuilt. Sending the same
 * request again later is safe: an append that landed is not stored twice
 * when its events keep their ids.
 */
final class UnavailableException extends EventStoreException
{
}
