"""A small client over the sidecar's generated gRPC stubs.

A stream's version is the number of events in it: its first event has
version 1. An append names the version the writer expects the stream to
have, either a count N >= 0 (0: the stream must not exist yet) or one of the
named expectations :data:`ANY` and :data:`STREAM_EXISTS`. A failed version
check raises :class:`WrongExpectedVersion`; every other failure raises
:class:`EventStoreError`.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc

from eventstore_client._pb import eventstore_pb2 as pb
from eventstore_client._pb import eventstore_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

#: NO_STREAM expects that the stream does not exist yet (has 0 events).
NO_STREAM = 0
#: ANY appends whatever the stream's version is.
ANY = -1
#: STREAM_EXISTS expects that the stream has at least one event.
STREAM_EXISTS = -2

#: DEFAULT_TIMEOUT is the deadline of an append in seconds.
DEFAULT_TIMEOUT = 10.0

# The sidecar's ABORTED message names both versions, for example
# 'stream "x": expected version 3, actual version 5'.
_EXPECTED_RE = re.compile(r"expected version (-?\d+)")
_ACTUAL_RE = re.compile(r"actual version (-?\d+)")


class EventStoreError(Exception):
    """EventStoreError is a call to the sidecar that failed.

    ``code`` is the gRPC status code (``None`` when the failure has none) and
    ``details`` the sidecar's message.
    """

    def __init__(self, code: grpc.StatusCode | None, details: str) -> None:
        name = code.name if code is not None else "UNKNOWN"
        super().__init__(f"{name}: {details}")
        self.code = code
        self.details = details


class WrongExpectedVersion(EventStoreError):
    """WrongExpectedVersion is an append whose expected version did not match.

    ``expected`` and ``actual`` are parsed from the sidecar's message;
    ``expected`` falls back to the version the append sent and ``actual`` is
    ``None`` when the message does not name it.
    """

    def __init__(
        self, stream: str, expected: int | None, actual: int | None, details: str
    ) -> None:
        super().__init__(grpc.StatusCode.ABORTED, details)
        self.stream = stream
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class AppendResult:
    """AppendResult is the outcome of a successful append."""

    #: current_version is the stream's version after the append.
    current_version: int
    #: partition is the Kafka partition that holds the stream.
    partition: int
    #: offset is the Kafka offset of the record holding the appended events.
    offset: int


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
    (for example a UUIDv5 of a source event id) to make retries safe.
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
    """Subscription iterates over the events of a running subscription.

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
            if self._cancelled and _code(err) == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise _error(err) from err

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
    ``"127.0.0.1:50051"``. Pass ``channel`` to use a channel of your own; the
    client then leaves closing it to you. ``timeout`` is the deadline of each
    append in seconds (default :data:`DEFAULT_TIMEOUT`).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        channel: grpc.Channel | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if (target is None) == (channel is None):
            raise ValueError("pass exactly one of target and channel")
        self._owns_channel = channel is None
        self._channel = (
            channel if channel is not None else grpc.insecure_channel(target)
        )
        self._stub = pb_grpc.EventStoreServiceStub(self._channel)
        self._timeout = timeout

    def append(
        self,
        stream: str,
        events: Iterable[pb.Event],
        expected_version: int,
        *,
        timeout: float | None = None,
    ) -> AppendResult:
        """append appends events to stream if its version is expected_version.

        The events of one call are stored atomically. Raises
        :class:`WrongExpectedVersion` when the stream's version differs and
        :class:`EventStoreError` for every other failure.
        """
        request = pb.AppendRequest(
            stream_name=stream, expected_version=expected_version, events=list(events)
        )
        extra = {"stream": stream, "expected_version": expected_version}
        logger.debug("append", extra={**extra, "events": len(request.events)})
        try:
            response = self._stub.AppendToStream(
                request, timeout=timeout if timeout is not None else self._timeout
            )
        except grpc.RpcError as err:
            raise _error(err, stream, expected_version) from err
        logger.debug("appended", extra={**extra, "version": response.current_version})
        return AppendResult(
            current_version=response.current_version,
            partition=response.partition,
            offset=response.offset,
        )

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


def _code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(err, "code", None)
    return code() if callable(code) else None


def _error(
    err: grpc.RpcError, stream: str = "", expected_version: int | None = None
) -> EventStoreError:
    """_error turns a failed call into the client's error types."""
    code = _code(err)
    details_fn = getattr(err, "details", None)
    details = (details_fn() if callable(details_fn) else None) or str(err)
    if code != grpc.StatusCode.ABORTED or expected_version is None:
        return EventStoreError(code, details)
    expected = _EXPECTED_RE.search(details)
    actual = _ACTUAL_RE.search(details)
    return WrongExpectedVersion(
        stream,
        int(expected.group(1)) if expected else expected_version,
        int(actual.group(1)) if actual else None,
        details,
    )
