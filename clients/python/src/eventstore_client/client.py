"""The client of one sidecar, over the generated gRPC stubs.

A stream's version is the number of events in it: its first event has
version 1. An append names the version the writer expects the stream to
have, either a count N >= 0 (0: the stream must not exist yet) or one of the
named expectations :data:`ANY` and :data:`STREAM_EXISTS`. A failed version
check raises :class:`~eventstore_client.errors.WrongExpectedVersion`; every
other failure raises the :class:`~eventstore_client.errors.EventStoreError`
subclass of its status code.

Unary calls (append, read, get) are retried with exponential backoff while
the sidecar answers UNAVAILABLE. That is safe for appends because the client
gives every event without an id a random one before the first attempt: the
sidecar answers a repeated append, by event id, with its original result.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eventstore_client._pb import eventstore_pb2 as pb
from eventstore_client._pb import eventstore_pb2_grpc as pb_grpc
from eventstore_client.backoff import Backoff
from eventstore_client.errors import (
    NotFound,
    Unavailable,
    from_rpc_error,
    status_code,
)
from eventstore_client.subscription import (
    DEFAULT_BACKOFF,
    Delivery,
    NackAction,
    PersistentSubscription,
    Position,
)

logger = logging.getLogger(__name__)

#: NO_STREAM expects that the stream does not exist yet (has 0 events).
NO_STREAM = 0
#: ANY appends whatever the stream's version is.
ANY = -1
#: STREAM_EXISTS expects that the stream has at least one event.
STREAM_EXISTS = -2

#: DEFAULT_TIMEOUT is the deadline of a unary call in seconds.
DEFAULT_TIMEOUT = 10.0
#: DEFAULT_RETRY retries unary calls on UNAVAILABLE for about 6 seconds.
DEFAULT_RETRY = Backoff(initial=0.1, maximum=2.0, attempts=6)

T = TypeVar("T")


@dataclass(frozen=True)
class Keepalive:
    """Keepalive makes the channel ping the sidecar so that a dead
    connection (a half-open TCP connection, a frozen peer) is noticed within
    about ``time_s + timeout_s`` seconds, also while no call is active.

    The sidecar must allow pings this often (a gRPC server's default allows
    one every 5 minutes and closes the connection of a client that pings
    more often while idle).
    """

    #: time_s is the idle time before a ping, in seconds (default 30).
    time_s: float = 30.0
    #: timeout_s is how long a ping may go unanswered, in seconds (default 10).
    timeout_s: float = 10.0
    #: permit_without_calls pings also when no call is active (default True).
    permit_without_calls: bool = True

    def channel_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.keepalive_time_ms", int(self.time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.timeout_s * 1000)),
            # The timeout of every ping; grpc's default is a minute.
            ("grpc.http2.ping_timeout_ms", int(self.timeout_s * 1000)),
            ("grpc.keepalive_permit_without_calls", int(self.permit_without_calls)),
            # Ping also when nothing else was sent since the last ping.
            ("grpc.http2.max_pings_without_data", 0),
            # A bandwidth probe ping that a frozen peer never answers would
            # hold back the keepalive ping, which alone has a timeout.
            ("grpc.http2.bdp_probe", 0),
        ]


#: DEFAULT_KEEPALIVE is the keepalive of channels the client opens.
DEFAULT_KEEPALIVE = Keepalive()

#: CHANNEL_OPTIONS are the client's other channel options: reconnects of the
#: channel itself back off from 100 ms to 5 s.
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
]


@dataclass(frozen=True)
class AppendResult:
    """AppendResult is the outcome of a successful append."""

    #: current_version is the stream's version after the append.
    current_version: int
    #: partition is the Kafka partition that holds the stream.
    partition: int
    #: offset is the Kafka offset of the record holding the appended events.
    offset: int


@dataclass(frozen=True)
class StreamInfo:
    """StreamInfo describes a stream without its events."""

    stream: str
    #: current_version is the number of events in the stream.
    current_version: int
    #: partition holds every record of the stream.
    partition: int
    #: first and last are the positions of the first and last event's record.
    first: Position
    last: Position


@dataclass(frozen=True)
class ParkedDelivery:
    """ParkedDelivery is a delivery a subscriber of a group parked."""

    position: Position
    events: list[pb.Event]
    redeliveries: int
    reason: str
    #: parked_at is Unix seconds, UTC.
    parked_at: int


def new_event(
    event_type: str,
    data: bytes | str | Mapping[str, Any],
    *,
    metadata: str | Mapping[str, Any] | None = None,
    event_id: str | None = None,
) -> pb.Event:
    """new_event builds an event to append.

    A mapping ``data`` or ``metadata`` is encoded as JSON; a string ``data`` as
    UTF-8. ``event_id`` defaults to a random UUID; pass a deterministic one
    (see :func:`~eventstore_client.deterministic_event_id`) to make
    reprocessing safe.
    """
    if isinstance(data, Mapping):
        data = json.dumps(data, ensure_ascii=False)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if isinstance(metadata, Mapping):
        metadata = json.dumps(metadata, ensure_ascii=False)
    return pb.Event(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        data=data,
        metadata=metadata or "",
    )


class Subscription(Iterator[pb.Event]):
    """Subscription iterates over the events of a SubscribeToAll call.

    Iteration blocks until the next event arrives. :meth:`cancel` ends the
    call from any thread; an iteration blocked in another thread then stops
    without an error.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> pb.Event:
        try:
            return next(self._call)
        except grpc.RpcError as err:
            # The flag is set before the call is cancelled, so an iteration
            # woken by our own cancel always sees it.
            if self._cancelled and status_code(err) == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(err) from err

    def cancel(self) -> None:
        """cancel ends the subscription; calling it twice is harmless."""
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


class EventStoreClient:
    """EventStoreClient talks to one sidecar.

    ``target`` is the sidecar's gRPC address, for example
    ``"127.0.0.1:50051"``; the client opens a channel with ``keepalive``
    (default :data:`DEFAULT_KEEPALIVE`; ``None`` turns pings off). Pass
    ``channel`` to use a channel of your own; the client then leaves its
    options and closing it to you. ``timeout`` is the deadline of each unary
    call in seconds (default :data:`DEFAULT_TIMEOUT`) and ``retry`` how
    unary calls are repeated while the sidecar is unavailable (default
    :data:`DEFAULT_RETRY`; :data:`~eventstore_client.NO_RETRY` turns it off).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        channel: grpc.Channel | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: Backoff = DEFAULT_RETRY,
        keepalive: Keepalive | None = DEFAULT_KEEPALIVE,
    ) -> None:
        if (target is None) == (channel is None):
            raise ValueError("pass exactly one of target and channel")
        self._owns_channel = channel is None
        if channel is None:
            options = list(CHANNEL_OPTIONS)
            if keepalive is not None:
                options += keepalive.channel_options()
            channel = grpc.insecure_channel(str(target), options=options)
        self._channel = channel
        self._stub = pb_grpc.EventStoreServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._timeout = timeout
        self._retry = retry

    # Health.

    def wait_ready(self, timeout: float = 30.0, service: str = "") -> None:
        """wait_ready blocks until the sidecar's health service reports
        SERVING for service ("" is the whole sidecar).

        It raises :class:`~eventstore_client.errors.Unavailable` when the
        sidecar is not serving within timeout seconds.
        """
        deadline = time.monotonic() + timeout
        delays = Backoff(initial=0.05, maximum=1.0).delays()
        last = "no answer"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"sidecar not ready within {timeout:g}s: {last}")
            try:
                response = self._health.Check(
                    health_pb2.HealthCheckRequest(service=service),
                    timeout=min(left, 5.0),
                    wait_for_ready=True,
                )
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    logger.debug("sidecar ready", extra={"service": service})
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(
                    response.status
                )
            except grpc.RpcError as err:
                last = str(from_rpc_error(err))
            time.sleep(min(next(delays), max(0.0, deadline - time.monotonic())))

    # Appends and reads.

    def append(
        self,
        stream: str,
        events: Iterable[pb.Event],
        expected_version: int,
        *,
        timeout: float | None = None,
    ) -> AppendResult:
        """append appends events to stream if its version is expected_version.

        The events of one call are stored atomically. Events without an id
        get a random one first (the caller's objects are left unchanged), so
        that retries cannot append twice. Raises
        :class:`~eventstore_client.errors.WrongExpectedVersion` when the
        stream's version differs,
        :class:`~eventstore_client.errors.AlreadyExists` when an event id is
        in the stream with other content, and the error of the status code
        for every other failure.
        """
        request = pb.AppendRequest(
            stream_name=stream, expected_version=expected_version, events=list(events)
        )
        for e in request.events:
            if not e.event_id:
                e.event_id = str(uuid.uuid4())
        extra = {"stream": stream, "expected_version": expected_version}
        logger.debug("append", extra={**extra, "events": len(request.events)})
        response = self._unary(
            lambda t: self._stub.AppendToStream(request, timeout=t),
            timeout,
            stream=stream,
            expected_version=expected_version,
        )
        logger.debug("appended", extra={**extra, "version": response.current_version})
        return AppendResult(
            current_version=response.current_version,
            partition=response.partition,
            offset=response.offset,
        )

    def read_stream(
        self,
        stream: str,
        *,
        from_version: int = 0,
        max_count: int = 0,
        backwards: bool = False,
        timeout: float | None = None,
    ) -> list[pb.Event]:
        """read_stream returns events of one stream in version order.

        Forwards it starts at from_version (0: the first event), backwards
        at from_version going down (0: the last event). ``max_count`` 0 reads
        to the end. Raises :class:`~eventstore_client.errors.NotFound` for a
        stream without events; a range past the end is an empty list.
        """
        direction = (
            pb.READ_DIRECTION_BACKWARDS if backwards else pb.READ_DIRECTION_FORWARDS
        )
        request = pb.ReadStreamRequest(
            stream_name=stream,
            from_version=from_version,
            max_count=max_count,
            direction=direction,
        )
        return self._unary(
            lambda t: list(self._stub.ReadStream(request, timeout=t)),
            timeout,
            stream=stream,
        )

    def get_stream(self, stream: str, *, timeout: float | None = None) -> StreamInfo:
        """get_stream returns a stream's version and positions.

        Raises :class:`~eventstore_client.errors.NotFound` for a stream
        without events.
        """
        info = self._unary(
            lambda t: self._stub.GetStream(
                pb.GetStreamRequest(stream_name=stream), timeout=t
            ),
            timeout,
            stream=stream,
        )
        return StreamInfo(
            stream=info.stream_name,
            current_version=info.current_version,
            partition=info.partition,
            first=Position.from_pb(info.first),
            last=Position.from_pb(info.last),
        )

    def stream_version(self, stream: str, *, timeout: float | None = None) -> int:
        """stream_version returns the number of events in stream, 0 when none."""
        try:
            return self.get_stream(stream, timeout=timeout).current_version
        except NotFound:
            return 0

    # Subscriptions.

    def subscribe_to_all(self, from_sequence_id: int = 0) -> Subscription:
        """subscribe_to_all streams every event of every stream, then new ones.

        ``from_sequence_id`` 0 (the default) starts at the beginning of the
        log. Cancel the returned :class:`Subscription` when done with it.
        """
        logger.debug("subscribe to all", extra={"from_sequence_id": from_sequence_id})
        call = self._stub.SubscribeToAll(
            pb.SubscribeRequest(from_sequence_id=from_sequence_id)
        )
        return Subscription(call)

    def subscribe(
        self,
        group: str,
        *,
        event_types: Sequence[str] = (),
        stream_prefix: str = "",
        max_in_flight: int = 0,
        from_end: bool = False,
        reconnect: bool = True,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> PersistentSubscription:
        """subscribe opens a persistent subscription in group.

        Subscribers of one group share the topic's partitions; the group
        commits only what was acknowledged. ``event_types`` and
        ``stream_prefix`` filter on the sidecar (events filtered out count as
        acknowledged). ``max_in_flight`` bounds unacknowledged deliveries (0:
        the sidecar's default). An empty group is a catch-up subscription of
        this client alone, from the beginning or, with ``from_end``, from
        now. With ``reconnect`` (the default) a lost call is reopened after a
        backoff. Close the subscription when done with it.
        """
        open_msg = pb.SubscribeOpen(
            group=group,
            max_in_flight=max_in_flight,
            event_types=list(event_types),
            stream_prefix=stream_prefix,
            start=pb.START_POSITION_END if from_end else pb.START_POSITION_BEGINNING,
        )
        logger.debug(
            "subscribe",
            extra={
                "group": group,
                "event_types": list(event_types),
                "stream_prefix": stream_prefix,
            },
        )
        return PersistentSubscription(
            self._stub, open_msg, reconnect=reconnect, backoff=backoff
        )

    def run_subscription(
        self,
        group: str,
        handler: Callable[[Delivery], None],
        *,
        stop: Callable[[], bool] = lambda: False,
        max_retries: int = 3,
        poll_interval: float = 0.2,
        **subscribe_args: Any,
    ) -> None:
        """run_subscription calls handler for every delivery of group until
        stop() returns true.

        A delivery the handler returns from without settling is acked. One
        whose handler raised is nacked to be retried, and parked with the
        error as its reason once it was redelivered max_retries times. The
        other keyword arguments go to :meth:`subscribe`. Errors the
        subscription cannot overcome propagate.
        """
        with self.subscribe(group, **subscribe_args) as sub:
            while not stop():
                delivery = sub.next(timeout=poll_interval)
                if delivery is None:
                    continue
                try:
                    handler(delivery)
                except Exception as err:  # noqa: BLE001 - reported by nack
                    reason = f"{type(err).__name__}: {err}"
                    action = (
                        NackAction.PARK
                        if delivery.redeliveries >= max_retries
                        else NackAction.RETRY
                    )
                    logger.warning(
                        "handler failed",
                        extra={
                            "group": group,
                            "partition": delivery.position.partition,
                            "offset": delivery.position.offset,
                            "action": action.name.lower(),
                            "err": reason,
                        },
                    )
                    delivery.nack(action, reason)
                    continue
                if not delivery.settled:
                    delivery.ack()

    def list_parked(
        self, group: str, max_count: int = 0, *, timeout: float | None = None
    ) -> list[ParkedDelivery]:
        """list_parked returns the group's parked deliveries, oldest first.

        ``max_count`` 0 takes the sidecar's default (100).
        """
        response = self._unary(
            lambda t: self._stub.ListParked(
                pb.ListParkedRequest(group=group, max_count=max_count), timeout=t
            ),
            timeout,
        )
        return [
            ParkedDelivery(
                position=Position.from_pb(p.delivery.position),
                events=list(p.delivery.events),
                redeliveries=p.delivery.redeliveries,
                reason=p.reason,
                parked_at=p.parked_at,
            )
            for p in response.parked
        ]

    def replay_parked(self, group: str, *, timeout: float | None = None) -> int:
        """replay_parked hands the group's parked deliveries to it again and
        returns how many."""
        response = self._unary(
            lambda t: self._stub.ReplayParked(
                pb.ReplayParkedRequest(group=group), timeout=t
            ),
            timeout,
        )
        return int(response.replayed)

    # Lifecycle.

    def close(self) -> None:
        """close closes the channel if the client opened it."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _unary(
        self,
        call: Callable[[float], T],
        timeout: float | None,
        *,
        stream: str = "",
        expected_version: int | None = None,
    ) -> T:
        """_unary makes call with a deadline, repeating it with backoff while
        the sidecar is unavailable, and maps failures to typed errors."""
        deadline = timeout if timeout is not None else self._timeout
        delays = self._retry.delays()
        while True:
            try:
                return call(deadline)
            except grpc.RpcError as rpc_err:
                err = from_rpc_error(
                    rpc_err, stream=stream, expected_version=expected_version
                )
                delay = next(delays, None) if err.retryable else None
                if delay is None:
                    raise err from rpc_err
                logger.warning(
                    "sidecar unavailable; retrying",
                    extra={
                        "stream": stream,
                        "err": err.details,
                        "delay_s": round(delay, 3),
                    },
                )
                time.sleep(delay)
