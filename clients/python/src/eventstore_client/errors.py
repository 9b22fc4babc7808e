"""Typed errors for the sidecar's gRPC status codes.

Every failed call raises a subclass of :class:`EventStoreError` chosen by
the status code, so callers branch on the type rather than on the code:

=====================  ===========================================
status code            error
=====================  ===========================================
ABORTED                :class:`WrongExpectedVersion` (appends)
NOT_FOUND              :class:`NotFound`
INVALID_ARGUMENT       :class:`InvalidArgument`
ALREADY_EXISTS         :class:`AlreadyExists`
RESOURCE_EXHAUSTED     :class:`ResourceExhausted`
FAILED_PRECONDITION    :class:`FailedPrecondition`
UNAVAILABLE            :class:`Unavailable`
DEADLINE_EXCEEDED      :class:`DeadlineExceeded`
CANCELLED              :class:`Cancelled`
=====================  ===========================================

Any other code raises :class:`EventStoreError` itself. The original
``grpc.RpcError`` is the exception's ``__cause__``.
"""

from __future__ import annotations

import re
from typing import Any

import grpc

#: ANY, STREAM_EXISTS: the named expectations as the sidecar words them.
_NAMED_EXPECTATIONS = {"any": -1, "stream exists": -2}

# 'stream "x": expected version 3, actual version 5'; the expected version
# may also be "any" or "stream exists".
_CONFLICT_RE = re.compile(
    r"expected version (-?\d+|any|stream exists), actual version (-?\d+)"
)
# 'stream "x": event id "y" exists at version 3 with other content'
_CLASH_RE = re.compile(r'event id "((?:[^"\\]|\\.)*)" exists at version (\d+)')


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

    @property
    def retryable(self) -> bool:
        """retryable tells whether the same call may succeed when repeated.

        Only :class:`Unavailable` is: the sidecar answers UNAVAILABLE when
        Kafka or Redis cannot be reached or its index is being rebuilt, and
        the client retries it by itself.
        """
        return False


class WrongExpectedVersion(EventStoreError):
    """WrongExpectedVersion is an append whose expected version did not hold.

    ``expected`` and ``actual`` are parsed from the sidecar's message, for
    example ``stream "x": expected version 3, actual version 5``; the named
    expectations come back as :data:`~eventstore_client.ANY` (-1) and
    :data:`~eventstore_client.STREAM_EXISTS` (-2). When the message names no
    versions, ``expected`` is the version the append sent and ``actual`` is
    ``None``.
    """

    def __init__(
        self, stream: str, expected: int | None, actual: int | None, details: str
    ) -> None:
        super().__init__(grpc.StatusCode.ABORTED, details)
        self.stream = stream
        self.expected = expected
        self.actual = actual


class NotFound(EventStoreError):
    """NotFound is a stream without events (GetStream, ReadStream)."""

    def __init__(self, details: str, stream: str = "") -> None:
        super().__init__(grpc.StatusCode.NOT_FOUND, details)
        self.stream = stream


class InvalidArgument(EventStoreError):
    """InvalidArgument is a malformed request; the message names the field."""

    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, details)


class AlreadyExists(EventStoreError):
    """AlreadyExists is an event id the stream holds already with other content.

    A retried append with the same events succeeds with its original result;
    this error means the same id was reused for a different event, or that
    the id landed in another append. ``event_id`` and ``version`` are parsed
    from the message (``None`` when it does not name them).
    """

    def __init__(self, details: str, stream: str = "") -> None:
        super().__init__(grpc.StatusCode.ALREADY_EXISTS, details)
        self.stream = stream
        match = _CLASH_RE.search(details)
        self.event_id: str | None = match.group(1) if match else None
        self.version: int | None = int(match.group(2)) if match else None


class ResourceExhausted(EventStoreError):
    """ResourceExhausted is an append beyond a configured size limit."""

    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.RESOURCE_EXHAUSTED, details)


class FailedPrecondition(EventStoreError):
    """FailedPrecondition is a request Kafka or the sidecar refused for good."""

    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.FAILED_PRECONDITION, details)


class Unavailable(EventStoreError):
    """Unavailable is a sidecar that cannot serve now; retrying is safe."""

    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, details)

    @property
    def retryable(self) -> bool:
        return True


class DeadlineExceeded(EventStoreError):
    """DeadlineExceeded is a call that ran out of time.

    An append may or may not have landed; repeat it with the same event ids
    to find out: the sidecar answers a repeated append with its original
    result.
    """

    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED, details)


class Cancelled(EventStoreError):
    """Cancelled is a call cancelled by the client or the server."""

    def __init__(self, details: str) -> None:
        super().__init__(grpc.StatusCode.CANCELLED, details)


def status_code(err: grpc.RpcError) -> grpc.StatusCode | None:
    """status_code returns the gRPC status code of err, if it has one."""
    code = getattr(err, "code", None)
    return code() if callable(code) else None


def _details(err: grpc.RpcError) -> str:
    details = getattr(err, "details", None)
    return (details() if callable(details) else None) or str(err)


def parse_conflict(details: str) -> tuple[int | None, int | None]:
    """parse_conflict reads (expected, actual) from a version conflict message.

    Either is ``None`` when the message does not name it.
    """
    match = _CONFLICT_RE.search(details)
    if match is None:
        return None, None
    raw = match.group(1)
    expected = _NAMED_EXPECTATIONS.get(raw)
    return (expected if expected is not None else int(raw)), int(match.group(2))


def from_rpc_error(
    err: grpc.RpcError, *, stream: str = "", expected_version: int | None = None
) -> EventStoreError:
    """from_rpc_error turns a failed gRPC call into the client's error types.

    ``stream`` and ``expected_version`` describe the call, for errors that
    carry them.
    """
    code = status_code(err)
    details = _details(err)
    if code == grpc.StatusCode.ABORTED:
        expected, actual = parse_conflict(details)
        if expected is None:
            expected = expected_version
        return WrongExpectedVersion(stream, expected, actual, details)
    simple: dict[grpc.StatusCode, Any] = {
        grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
        grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
        grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
        grpc.StatusCode.UNAVAILABLE: Unavailable,
        grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
        grpc.StatusCode.CANCELLED: Cancelled,
    }
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details, stream)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(details, stream)
    if code in simple:
        return simple[code](details)
    return EventStoreError(code, details)
