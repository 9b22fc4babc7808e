"""Persistent subscriptions: a group's deliveries, acknowledged one by one.

A :class:`PersistentSubscription` runs one bidirectional ``Subscribe`` call at
a time. A background thread (the pump) reads the call's messages into a
queue, and reopens the call with exponential backoff when the sidecar goes
away; the consumer's thread takes deliveries from the queue with ``next``
or by iterating. Acks and nacks travel on the call that delivered them.

Reconnecting is safe because the group commits only what was acknowledged:
a delivery that was in flight when its call broke comes again on the new
call. A subscription without a group commits nothing; it reopens at a cursor
past the last delivery it handed out in each partition (and past what its
caught-up marker covered), so it neither repeats nor skips events. Acks for deliveries of a broken call are dropped (the sidecar already
forgot them), and deliveries of a broken call still waiting in the queue are
discarded rather than handed out, since they come again anyway.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc

from eventstore_client._pb import eventstore_pb2 as pb
from eventstore_client.backoff import Backoff
from eventstore_client.errors import EventStoreError, Unavailable, from_rpc_error

logger = logging.getLogger(__name__)

#: DEFAULT_BACKOFF is how a subscription waits between reconnects.
DEFAULT_BACKOFF = Backoff(initial=0.1, maximum=5.0)
#: DEFAULT_DRAIN_TIMEOUT is how long close waits, after sending its last
#: acks, for the sidecar to end the call before cancelling it, in seconds.
DEFAULT_DRAIN_TIMEOUT = 0.5


class NackAction(enum.IntEnum):
    """NackAction is what the sidecar does with a rejected delivery."""

    #: RETRY delivers it again.
    RETRY = pb.NACK_ACTION_RETRY
    #: PARK moves it to the group's parked deliveries; it counts as acked.
    PARK = pb.NACK_ACTION_PARK
    #: SKIP drops it; it counts as acked.
    SKIP = pb.NACK_ACTION_SKIP


@dataclass(frozen=True)
class Position:
    """Position is where a delivery's record lives in the topic.

    ``replayed`` marks a delivery replayed from the group's parked
    deliveries: partition and offset are then its place in the replay log.
    """

    partition: int
    offset: int
    replayed: bool = False

    @classmethod
    def from_pb(cls, p: pb.Position) -> Position:
        return cls(p.partition, p.offset, p.replayed)

    def to_pb(self) -> pb.Position:
        return pb.Position(
            partition=self.partition, offset=self.offset, replayed=self.replayed
        )


class Delivery:
    """Delivery is one record of a persistent subscription: the events of
    one append, acknowledged as one.

    Settle every delivery exactly once with :meth:`ack` or :meth:`nack`;
    further calls are ignored. ``redeliveries`` counts earlier deliveries of
    the same record to this group.
    """

    def __init__(
        self, sub: PersistentSubscription, generation: int, msg: pb.Delivery
    ) -> None:
        self._sub = sub
        self._generation = generation
        self.position = Position.from_pb(msg.position)
        self.events: list[pb.Event] = list(msg.events)
        self.redeliveries: int = msg.redeliveries
        self.settled = False

    def ack(self) -> None:
        """ack acknowledges the delivery: the group may commit past it."""
        if self._settle("ack"):
            self._sub._send(self._generation, _ack(self.position))

    def nack(self, action: NackAction = NackAction.RETRY, reason: str = "") -> None:
        """nack rejects the delivery: retry, park (with reason) or skip it."""
        if self._settle("nack"):
            nack = pb.Nack(
                position=self.position.to_pb(), action=int(action), reason=reason
            )
            self._sub._send(self._generation, pb.SubscribeClientMessage(nack=nack))

    def _settle(self, what: str) -> bool:
        if self.settled:
            logger.debug(
                f"{what} of a settled delivery ignored", extra=self._log_extra()
            )
            return False
        self.settled = True
        return True

    def _log_extra(self) -> dict[str, Any]:
        return {
            "group": self._sub.group,
            "partition": self.position.partition,
            "offset": self.position.offset,
        }

    def __repr__(self) -> str:
        return (
            f"Delivery(partition={self.position.partition}, "
            f"offset={self.position.offset}, events={len(self.events)}, "
            f"redeliveries={self.redeliveries})"
        )


def _ack(position: Position) -> pb.SubscribeClientMessage:
    return pb.SubscribeClientMessage(ack=pb.Ack(positions=[position.to_pb()]))


# Markers in a connection's outbox and in the subscription's inbox.
_END = object()
_WAKE = object()
_CLOSED = object()


class _Connection:
    """_Connection is one Subscribe call and the queue of what it sends."""

    def __init__(self, generation: int, open_msg: pb.SubscribeOpen) -> None:
        self.generation = generation
        self.outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.outbox.put(pb.SubscribeClientMessage(open=open_msg))
        #: sent is set once the request iterator ended: everything queued
        #: before _END was handed to gRPC.
        self.sent = threading.Event()
        self.call: Any = None

    def requests(self) -> Iterator[pb.SubscribeClientMessage]:
        """requests yields the outbox until _END, merging queued acks."""
        try:
            pending: Any = None
            while True:
                msg = pending if pending is not None else self.outbox.get()
                pending = None
                if msg is _END:
                    return
                if msg.HasField("ack"):
                    msg, pending = self._merge_acks(msg)
                yield msg
        finally:
            self.sent.set()

    def _merge_acks(self, first: pb.SubscribeClientMessage) -> tuple[Any, Any]:
        """_merge_acks folds the acks queued behind first into one message.

        It returns the merged message and the first queued item that is not
        an ack, if any, to be sent next.
        """
        merged = pb.SubscribeClientMessage()
        merged.ack.positions.extend(first.ack.positions)
        while True:
            try:
                nxt = self.outbox.get_nowait()
            except queue.Empty:
                return merged, None
            if nxt is _END or not nxt.HasField("ack"):
                return merged, nxt
            merged.ack.positions.extend(nxt.ack.positions)


class PersistentSubscription(Iterator[Delivery]):
    """PersistentSubscription is a member of a consumer group (or, without a
    group, a catch-up reader of the whole topic).

    Iterating yields :class:`Delivery` objects until :meth:`close`; a failure
    that reconnecting cannot overcome (or any failure, with
    ``reconnect=False``) raises an :class:`EventStoreError` from the
    iteration. :meth:`next` waits at most a timeout, for batching consumers.
    ``caught_up`` is set as soon as the sidecar reported that everything in
    the subscription's partitions at the time it opened was sent; deliveries
    before the report may still wait for :meth:`next`.

    Create it with :meth:`EventStoreClient.subscribe
    <eventstore_client.EventStoreClient.subscribe>`.
    """

    def __init__(
        self,
        stub: Any,
        open_msg: pb.SubscribeOpen,
        *,
        reconnect: bool = True,
        backoff: Backoff = DEFAULT_BACKOFF,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ) -> None:
        self._stub = stub
        self._open = open_msg
        self._reconnect = reconnect
        self._backoff = backoff
        self._drain_timeout = drain_timeout
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._generation = 0
        self._closing = threading.Event()
        self._closed = False
        #: caught_up is set when the first CaughtUp arrived.
        self.caught_up = threading.Event()
        #: connections counts the Subscribe calls opened so far.
        self.connections = 0
        # The next offset per partition of a subscription without a group,
        # for reopening it where it was.
        self._cursor: dict[int, int] = {}
        self._pump_thread = threading.Thread(
            target=self._pump,
            name=f"subscription-{open_msg.group or 'all'}",
            daemon=True,
        )
        self._pump_thread.start()

    @property
    def group(self) -> str:
        """group is the subscription's consumer group, empty for none."""
        return self._open.group

    @property
    def closed(self) -> bool:
        """closed tells whether the subscription ended."""
        return self._closed

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Delivery:
        while True:
            delivery = self.next()
            if delivery is not None:
                return delivery
            if self._closed:
                raise StopIteration

    def next(self, timeout: float | None = None) -> Delivery | None:
        """next returns the next delivery, waiting at most timeout seconds.

        It returns ``None`` when the wait ran out, when :meth:`wake` was
        called, and once the subscription is closed. It raises the error that
        ended the subscription.
        """
        while not self._closed:
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                return None
            if item is _WAKE:
                return None
            if item is _CLOSED:
                self._closed = True
                return None
            generation, msg = item
            if isinstance(msg, EventStoreError):
                self._closed = True
                raise msg
            if generation != self._generation:
                continue  # from a broken call; it comes again
            if msg.HasField("caught_up"):
                self._advance(msg.caught_up.positions, past=False)
                continue
            self._advance([msg.delivery.position], past=True)
            return Delivery(self, generation, msg.delivery)
        return None

    def _advance(self, positions: Sequence[pb.Position], *, past: bool) -> None:
        """_advance moves the cursor of a subscription without a group to
        the given positions (past them, with past)."""
        if self.group:
            return
        with self._lock:
            for p in positions:
                nxt = p.offset + 1 if past else p.offset
                if nxt > self._cursor.get(p.partition, -1):
                    self._cursor[p.partition] = nxt

    def _open_message(self) -> pb.SubscribeOpen:
        """_open_message is the open of the next call: the original one, or
        for a subscription without a group that handed out something, one
        that starts at the cursor. Partitions the cursor does not name start
        at their beginning."""
        if self.group or not self._cursor:
            return self._open
        reopen = pb.SubscribeOpen()
        reopen.CopyFrom(self._open)
        reopen.start = pb.START_POSITION_CURSOR
        del reopen.cursor[:]
        for partition, offset in sorted(self._cursor.items()):
            reopen.cursor.add(partition=partition, offset=offset)
        return reopen

    def wake(self) -> None:
        """wake makes a blocked :meth:`next` return ``None`` now.

        It is safe to call from a signal handler or another thread.
        """
        self._inbox.put(_WAKE)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """ack acknowledges several deliveries; see :meth:`Delivery.ack`."""
        for d in deliveries:
            d.ack()

    def close(self) -> None:
        """close ends the subscription after sending the acks already made.

        It half-closes the call, waits up to the drain timeout for the sidecar
        to end it, then cancels it. Deliveries not acknowledged by then come
        again to the group. Calling close twice is harmless.
        """
        with self._lock:
            if self._closing.is_set():
                return
            self._closing.set()
            conn = self._conn
        if conn is not None and conn.call is not None:
            conn.outbox.put(_END)
            conn.sent.wait(self._drain_timeout)
            done = threading.Event()
            conn.call.add_done_callback(lambda _: done.set())
            done.wait(self._drain_timeout)
            conn.call.cancel()
        self._pump_thread.join(timeout=10)
        self._inbox.put(_CLOSED)
        logger.info("subscription closed", extra={"group": self.group})

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, generation: int, msg: pb.SubscribeClientMessage) -> None:
        """_send queues msg on the call that made the delivery, if it lives."""
        with self._lock:
            conn = self._conn
            if conn is None or conn.generation != generation or self._closing.is_set():
                logger.debug(
                    "ack or nack dropped: its call ended; the delivery comes again",
                    extra={"group": self.group},
                )
                return
            conn.outbox.put(msg)

    def _pump(self) -> None:
        """_pump runs Subscribe calls until the subscription closes or fails."""
        delays: Iterator[float] | None = None
        while not self._closing.is_set():
            err = self._run_once()
            if err is None:
                # A message arrived on the call: the next loss starts the
                # backoff afresh.
                delays = None
                continue
            if self._closing.is_set():
                return
            if not (self._reconnect and err.retryable):
                self._inbox.put((self._generation, err))
                return
            if delays is None:
                delays = self._backoff.delays()
            delay = next(delays, None)
            if delay is None:
                self._inbox.put((self._generation, err))
                return
            logger.warning(
                "subscription lost; reconnecting",
                extra={
                    "group": self.group,
                    "err": str(err),
                    "delay_s": round(delay, 3),
                },
            )
            if self._closing.wait(delay):
                return

    def _run_once(self) -> EventStoreError | None:
        """_run_once opens one call and reads it until it ends.

        It returns the error that ended it, or None when the call ended after
        delivering something (the pump then reconnects at once).
        """
        with self._lock:
            if self._closing.is_set():
                return None
            self._generation += 1
            conn = _Connection(self._generation, self._open_message())
            conn.call = self._stub.Subscribe(conn.requests())
            self._conn = conn
            self.connections += 1
        received = False
        try:
            for msg in conn.call:
                if not received:
                    received = True
                    logger.info(
                        "subscription open",
                        extra={"group": self.group, "connection": conn.generation},
                    )
                self._inbox.put((conn.generation, msg))
                if msg.HasField("caught_up") and not self.caught_up.is_set():
                    logger.debug("caught up", extra={"group": self.group})
                    self.caught_up.set()
            err: EventStoreError = Unavailable("the sidecar ended the subscription")
        except grpc.RpcError as rpc_err:
            err = from_rpc_error(rpc_err)
        finally:
            conn.outbox.put(_END)
        if received and err.retryable and not self._closing.is_set():
            logger.warning(
                "subscription lost; reconnecting",
                extra={"group": self.group, "err": str(err), "delay_s": 0},
            )
            return None
        return err
