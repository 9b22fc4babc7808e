"""The sidecar's wire contract as the Python client sees it.

Every test writes to fresh streams with random names, so the tests neither
depend on each other nor on what else is in the topic.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import pytest

from eventstore_client import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    Event,
    EventStoreClient,
    EventStoreError,
    Subscription,
    WrongExpectedVersion,
    new_event,
)

#: DELIVERY_TIMEOUT bounds each wait for events on a subscription, in seconds.
DELIVERY_TIMEOUT = 45.0

SUBMISSIONS = [
    "Marie Curie moved from Warsaw to Paris in 1891 to study physics at the Sorbonne.",
    "Nelson Mandela spoke to a large crowd in Cape Town on the day he left prison.",
    "Engineers from Airbus and the European Space Agency met in Toulouse on Monday.",
    "Ada Lovelace wrote her notes on Charles Babbage's Analytical Engine in London.",
    "The World Health Organization opened a new regional office in Nairobi.",
    "Haruki Murakami read from his latest novel at the public library in Boston.",
    "Volunteers from Greenpeace cleaned the beaches near Lisbon with local fishermen.",
    "Angela Merkel visited the Siemens factory in Erlangen with students from Munich.",
    "Frida Kahlo painted the portrait in her blue house in Coyoacán, Mexico City.",
    "The United Nations asked Oxfam and the Red Cross to send doctors to Khartoum.",
]


def new_stream() -> str:
    return f"content-{uuid.uuid4()}"


def content_submitted(index: int) -> Event:
    """content_submitted builds a ContentSubmitted event with a real sentence."""
    text = SUBMISSIONS[index % len(SUBMISSIONS)]
    return new_event(
        "ContentSubmitted",
        {
            "content_id": str(uuid.uuid4()),
            "author_id": f"user-{index}",
            "language": "en",
            "text": text,
        },
        metadata={
            "user_id": f"user-{index}",
            "request_id": str(uuid.uuid4()),
            "schema_version": 1,
        },
    )


def submissions(start: int, count: int) -> list[Event]:
    return [content_submitted(start + i) for i in range(count)]


def test_append_counts_events_from_one(client: EventStoreClient) -> None:
    stream = new_stream()

    first = client.append(stream, submissions(0, 1), NO_STREAM)
    assert first.current_version == 1

    second = client.append(stream, submissions(1, 2), expected_version=1)
    assert second.current_version == 3

    third = client.append(stream, submissions(3, 3), expected_version=3)
    assert third.current_version == 6


def test_named_expectations(client: EventStoreClient) -> None:
    stream = new_stream()

    with pytest.raises(WrongExpectedVersion) as missing:
        client.append(stream, submissions(0, 1), STREAM_EXISTS)
    assert missing.value.actual == 0, missing.value.details

    assert client.append(stream, submissions(0, 1), ANY).current_version == 1
    assert client.append(stream, submissions(1, 2), STREAM_EXISTS).current_version == 3
    assert client.append(stream, submissions(3, 1), ANY).current_version == 4

    with pytest.raises(WrongExpectedVersion) as exists:
        client.append(stream, submissions(4, 1), NO_STREAM)
    assert (exists.value.expected, exists.value.actual) == (0, 4), exists.value.details


def test_stale_expected_version_is_aborted(client: EventStoreClient) -> None:
    stream = new_stream()
    assert client.append(stream, submissions(0, 3), NO_STREAM).current_version == 3
    assert client.append(stream, submissions(3, 1), 3).current_version == 4

    with pytest.raises(WrongExpectedVersion) as conflict:
        client.append(stream, submissions(4, 2), 3)

    err = conflict.value
    assert err.code == grpc.StatusCode.ABORTED
    assert isinstance(err.__cause__, grpc.RpcError)
    assert err.__cause__.code() == grpc.StatusCode.ABORTED
    assert (err.stream, err.expected, err.actual) == (stream, 3, 4), err.details

    # The rejected append wrote nothing: the stream is still at 4.
    assert client.append(stream, submissions(4, 1), 4).current_version == 5


@pytest.mark.parametrize(
    ("stream", "events"),
    [
        pytest.param("", submissions(0, 1), id="empty-stream-name"),
        pytest.param(new_stream(), [], id="no-events"),
        pytest.param(new_stream(), [new_event("", b"{}")], id="no-event-type"),
    ],
)
def test_malformed_append_is_invalid_argument(
    client: EventStoreClient, stream: str, events: list[Event]
) -> None:
    with pytest.raises(EventStoreError) as invalid:
        client.append(stream, events, NO_STREAM)

    assert not isinstance(invalid.value, WrongExpectedVersion)
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT, invalid.value.details


@dataclass
class Collector:
    """Collector reads a subscription in a background thread.

    It keeps the events whose ids are in ``wanted`` and ignores the rest of
    the topic.
    """

    subscription: Subscription
    wanted: set[str]
    events: list[Event] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.subscription:
                if event.event_id in self.wanted:
                    with self._cond:
                        self.events.append(event)
                        self._cond.notify_all()
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            with self._cond:
                self.error = err
        finally:
            with self._cond:
                self.done = True
                self._cond.notify_all()

    def wait_for(self, ready: Callable[[list[Event]], bool], what: str) -> None:
        """wait_for waits until ready(events) holds, bounded by DELIVERY_TIMEOUT."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        with self._cond:
            while not ready(self.events):
                if self.error is not None:
                    raise AssertionError(
                        f"subscription failed: {self.error}"
                    ) from self.error
                if self.done:
                    raise AssertionError(f"subscription ended before {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {DELIVERY_TIMEOUT:.0f}s waiting for {what}; "
                        f"got {len(self.events)} events"
                    )
                self._cond.wait(left)

    def stop(self) -> None:
        self.subscription.cancel()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "subscription did not end after cancel"
        assert self.error is None, f"subscription failed: {self.error}"


@dataclass
class Appended:
    """Appended is one append the test made and what it sent."""

    stream: str
    events: list[Event]
    result: AppendResult


def test_subscribe_to_all_replays_then_tails(client: EventStoreClient) -> None:
    # Three streams filled in different shapes: one multi-event append,
    # a single then a double append, and four single appends.
    streams = [new_stream() for _ in range(3)]
    plan = [(streams[0], 3), (streams[1], 1), (streams[1], 2)]
    plan += [(streams[2], 1)] * 4
    appends: list[Appended] = []
    versions = dict.fromkeys(streams, 0)
    for i, (stream, count) in enumerate(plan):
        events = submissions(i * 3, count)
        result = client.append(stream, events, versions[stream])  # 0: NO_STREAM
        versions[stream] += count
        assert result.current_version == versions[stream]
        appends.append(Appended(stream, events, result))

    live = content_submitted(99)
    wanted = {e.event_id for a in appends for e in a.events} | {live.event_id}
    history = len(wanted) - 1
    collector = Collector(client.subscribe_to_all(0), wanted)
    try:
        collector.wait_for(
            lambda got: len(got) >= history, f"{history} replayed events"
        )

        # The subscription has caught up; this append happens after it started.
        live_result = client.append(streams[0], [live], versions[streams[0]])
        assert live_result.current_version == versions[streams[0]] + 1
        appends.append(Appended(streams[0], [live], live_result))
        collector.wait_for(
            lambda got: any(e.event_id == live.event_id for e in got), "the live event"
        )
    finally:
        collector.stop()

    check_delivery(appends, collector.events)


def check_delivery(appends: list[Appended], delivered: list[Event]) -> None:
    """check_delivery compares the delivered events with what was appended.

    Each event arrives once, each stream's events arrive in version order
    1..n, and every field the writer set arrives unchanged, with the Kafka
    position of the append that wrote it.
    """
    ids = [e.event_id for e in delivered]
    assert len(ids) == len(set(ids)), "an event was delivered twice"

    by_id = {e.event_id: e for e in delivered}
    expected: dict[str, list[str]] = {}
    for a in appends:
        for sent in a.events:
            expected.setdefault(a.stream, []).append(sent.event_id)
            got = by_id[sent.event_id]
            assert got.aggregate_id == a.stream
            assert got.event_type == sent.event_type
            assert got.data == sent.data
            assert json.loads(got.data)["text"] in SUBMISSIONS
            assert json.loads(got.metadata) == json.loads(sent.metadata)
            assert got.created_at > 0
            assert (got.partition, got.offset) == (a.result.partition, a.result.offset)

    for stream, event_ids in expected.items():
        in_stream = [e for e in delivered if e.aggregate_id == stream]
        assert [e.event_id for e in in_stream] == event_ids, f"order of {stream}"
        assert [e.aggregate_version for e in in_stream] == list(
            range(1, len(event_ids) + 1)
        ), f"versions of {stream}"
