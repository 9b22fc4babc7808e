"""Persistent subscriptions: acks, nacks, parking, handlers and reconnects.

Every test uses an event type of its own and a group of its own, so the
sidecar's filter hides the rest of the session's topic.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from proxy import Proxy

from eventstore_client import (
    ANY,
    Delivery,
    EventStoreClient,
    InvalidArgument,
    Keepalive,
    NackAction,
    PersistentSubscription,
    new_event,
)
from eventstore_client.pytest_plugin import Sidecar

#: WAIT bounds each wait for a delivery, in seconds.
WAIT = 30.0


@pytest.fixture
def kind() -> str:
    """kind is an event type no other test uses."""
    return f"Probe{uuid.uuid4().hex[:10]}"


@pytest.fixture
def group() -> str:
    """group is a consumer group no other test uses."""
    return f"g-{uuid.uuid4().hex[:10]}"


def append(
    client: EventStoreClient, kind: str, n: int, stream: str | None = None
) -> str:
    """append appends one event of kind carrying n and returns its id."""
    event = new_event(kind, {"n": n})
    client.append(stream or f"sub-{uuid.uuid4()}", [event], ANY)
    return event.event_id


def take(sub: PersistentSubscription, count: int) -> list[Delivery]:
    """take returns the next count deliveries or fails."""
    got: list[Delivery] = []
    while len(got) < count:
        d = sub.next(timeout=WAIT)
        assert d is not None, f"got {len(got)} of {count} deliveries within {WAIT:.0f}s"
        got.append(d)
    return got


def ids(deliveries: list[Delivery]) -> list[str]:
    return [e.event_id for d in deliveries for e in d.events]


#: QUIET is how long nothing must arrive for a subscription to count as
#: having nothing more to deliver, in seconds.
QUIET = 2.0


def assert_quiet(sub: PersistentSubscription) -> None:
    """assert_quiet checks that, once caught up, nothing more comes."""
    assert sub.caught_up.wait(WAIT), "no caught-up marker"
    extra = sub.next(timeout=QUIET)
    assert extra is None, f"unexpected {extra}: {ids([extra])}"


@pytest.fixture
def subscriptions() -> Iterator[list[PersistentSubscription]]:
    """subscriptions closes what a test opened, also when it fails."""
    opened: list[PersistentSubscription] = []
    yield opened
    for sub in opened:
        sub.close()


def test_acked_deliveries_are_committed_and_the_others_come_again(
    client: EventStoreClient,
    kind: str,
    group: str,
    subscriptions: list[PersistentSubscription],
) -> None:
    sent = [append(client, kind, n) for n in range(4)]
    append(client, "NotForThisGroup", 0)

    sub = client.subscribe(group, event_types=[kind])
    subscriptions.append(sub)
    first = take(sub, 4)
    assert sorted(ids(first)) == sorted(sent)
    assert all(d.redeliveries == 0 for d in first)
    for d in first[:2]:
        d.ack()
    sub.close()

    again = client.subscribe(group, event_types=[kind])
    subscriptions.append(again)
    second = take(again, 2)
    assert sorted(ids(second)) == sorted(ids(first[2:]))
    for d in second:
        d.ack()
    assert_quiet(again)


def test_nack_retry_park_and_skip(
    client: EventStoreClient,
    kind: str,
    group: str,
    subscriptions: list[PersistentSubscription],
) -> None:
    stream = f"sub-{uuid.uuid4()}"
    retry, park, skip = (append(client, kind, n, stream) for n in range(3))

    sub = client.subscribe(group, event_types=[kind], max_in_flight=1)
    subscriptions.append(sub)
    (d,) = take(sub, 1)
    assert ids([d]) == [retry]
    d.nack(NackAction.RETRY, "try again")
    (d,) = take(sub, 1)
    assert ids([d]) == [retry]
    assert d.redeliveries == 1
    d.ack()

    (d,) = take(sub, 1)
    assert ids([d]) == [park]
    d.nack(NackAction.PARK, "cannot read it")
    (d,) = take(sub, 1)
    assert ids([d]) == [skip]
    d.nack(NackAction.SKIP)
    assert_quiet(sub)

    parked = client.list_parked(group)
    assert [e.event_id for p in parked for e in p.events] == [park]
    assert parked[0].reason == "cannot read it"
    assert parked[0].parked_at > 0

    assert client.replay_parked(group) == 1
    (d,) = take(sub, 1)
    assert ids([d]) == [park]
    assert d.position.replayed
    d.ack()


def test_run_subscription_acks_retries_then_parks(
    client: EventStoreClient, kind: str, group: str
) -> None:
    good = [append(client, kind, n) for n in range(2)]
    bad = append(client, kind, 99)
    handled: list[str] = []
    attempts: list[int] = []
    parked = threading.Event()
    done = threading.Event()

    def handler(d: Delivery) -> None:
        (event,) = d.events
        if event.event_id == bad:
            attempts.append(d.redeliveries)
            if d.redeliveries >= 2:
                parked.set()
            raise ValueError("no such number")
        handled.append(event.event_id)

    def run() -> None:
        try:
            client.run_subscription(
                group, handler, stop=done.is_set, max_retries=2, event_types=[kind]
            )
        finally:
            done.set()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        assert parked.wait(WAIT), f"attempts so far: {attempts}"
        for _ in range(int(WAIT * 10)):
            if client.list_parked(group) and len(handled) == 2:
                break
            done.wait(0.1)
    finally:
        done.set()
        runner.join(WAIT)
    assert not runner.is_alive()

    assert sorted(handled) == sorted(good)
    assert attempts == [0, 1, 2]
    (p,) = client.list_parked(group)
    assert [e.event_id for e in p.events] == [bad]
    assert p.reason == "ValueError: no such number"


def test_a_new_group_reports_when_it_caught_up(
    client: EventStoreClient,
    kind: str,
    group: str,
    subscriptions: list[PersistentSubscription],
) -> None:
    sent = {append(client, kind, n) for n in range(3)}
    sub = client.subscribe(group, event_types=[kind])
    subscriptions.append(sub)
    got = take(sub, 3)
    assert set(ids(got)) == sent
    assert sub.caught_up.wait(WAIT)


def test_invalid_open_is_raised(client: EventStoreClient) -> None:
    with client.subscribe("not a group name!") as sub, pytest.raises(InvalidArgument):
        sub.next(timeout=WAIT)


def test_group_subscription_survives_dropped_connections(
    sidecar: Sidecar,
    client: EventStoreClient,
    kind: str,
    group: str,
    subscriptions: list[PersistentSubscription],
) -> None:
    with Proxy(sidecar.address) as proxy, EventStoreClient(proxy.address) as proxied:
        sub = proxied.subscribe(group, event_types=[kind])
        subscriptions.append(sub)
        first = append(client, kind, 1)
        (d,) = take(sub, 1)
        assert ids([d]) == [first]
        d.ack()

        proxy.drop()
        second = append(client, kind, 2)
        # The first delivery comes again if its ack was lost with the
        # connection; the second comes in any case.
        got = take(sub, 1)
        if ids(got) == [first]:
            got[0].ack()
            got = take(sub, 1)
        assert ids(got) == [second]
        got[0].ack()
        assert sub.connections >= 2


def test_keepalive_notices_a_frozen_connection(
    sidecar: Sidecar,
    client: EventStoreClient,
    kind: str,
    subscriptions: list[PersistentSubscription],
) -> None:
    keepalive = Keepalive(time_s=1.0, timeout_s=1.0)
    with (
        Proxy(sidecar.address) as proxy,
        EventStoreClient(proxy.address, keepalive=keepalive) as proxied,
    ):
        # Without a group: on reconnecting it resumes at its cursor.
        sub = proxied.subscribe("", event_types=[kind])
        subscriptions.append(sub)
        first = append(client, kind, 1)
        (d,) = take(sub, 1)
        assert ids([d]) == [first]

        # The connection stays open but nothing passes any more: only the
        # keepalive's unanswered ping tells.
        proxy.freeze()
        second = append(client, kind, 2)
        (d,) = take(sub, 1)
        assert ids([d]) == [second], "the first event came again or the second is lost"
        assert sub.connections >= 2
