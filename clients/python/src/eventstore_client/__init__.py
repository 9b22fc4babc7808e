"""Python client for the event-store sidecar.

The sidecar runs beside the application and serves the ``eventstore``
gRPC service on localhost. :class:`EventStoreClient` appends events to
streams and subscribes to the log of all streams.
"""

from eventstore_client._pb.eventstore_pb2 import Event
from eventstore_client.client import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    EventStoreClient,
    EventStoreError,
    Subscription,
    WrongExpectedVersion,
    new_event,
)

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "Event",
    "EventStoreClient",
    "EventStoreError",
    "Subscription",
    "WrongExpectedVersion",
    "new_event",
]
