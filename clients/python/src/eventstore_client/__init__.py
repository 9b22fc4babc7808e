"""Python client for the event-store sidecar.

The sidecar runs beside the application and serves the ``eventstore``
gRPC service on localhost. :class:`EventStoreClient` appends events to
streams, reads them back, and subscribes to the log, alone or in a consumer
group with acknowledgements.
"""

from eventstore_client._pb.eventstore_pb2 import Event
from eventstore_client.backoff import NO_RETRY, Backoff
from eventstore_client.client import (
    ANY,
    DEFAULT_KEEPALIVE,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    EventStoreClient,
    Keepalive,
    ParkedDelivery,
    StreamInfo,
    Subscription,
    new_event,
)
from eventstore_client.errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    EventStoreError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    WrongExpectedVersion,
)
from eventstore_client.ids import EVENT_ID_NAMESPACE, deterministic_event_id
from eventstore_client.subscription import (
    Delivery,
    NackAction,
    PersistentSubscription,
    Position,
)

__all__ = [
    "ANY",
    "DEFAULT_KEEPALIVE",
    "EVENT_ID_NAMESPACE",
    "NO_RETRY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AlreadyExists",
    "AppendResult",
    "Backoff",
    "Cancelled",
    "DeadlineExceeded",
    "Delivery",
    "Event",
    "EventStoreClient",
    "EventStoreError",
    "FailedPrecondition",
    "InvalidArgument",
    "Keepalive",
    "NackAction",
    "NotFound",
    "ParkedDelivery",
    "PersistentSubscription",
    "Position",
    "ResourceExhausted",
    "StreamInfo",
    "Subscription",
    "Unavailable",
    "WrongExpectedVersion",
    "deterministic_event_id",
    "new_event",
]
