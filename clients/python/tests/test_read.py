"""Reading streams, their versions, idempotent appends and readiness."""

from __future__ import annotations

import json
import uuid

import pytest

from eventstore_client import (
    ANY,
    NO_RETRY,
    NO_STREAM,
    AlreadyExists,
    EventStoreClient,
    InvalidArgument,
    NotFound,
    Unavailable,
    new_event,
)
from eventstore_client.testing import free_port


def new_stream() -> str:
    return f"read-{uuid.uuid4()}"


def fill(client: EventStoreClient, stream: str, count: int) -> list[str]:
    """fill appends count events in appends of one and two; returns the ids."""
    ids: list[str] = []
    version = 0
    while len(ids) < count:
        n = min(2 if len(ids) % 3 else 1, count - len(ids))
        events = [new_event("Numbered", {"n": len(ids) + i + 1}) for i in range(n)]
        version = client.append(stream, events, version).current_version
        ids += [e.event_id for e in events]
    return ids


def numbers(events: list) -> list[int]:
    return [json.loads(e.data)["n"] for e in events]


def test_read_forwards_and_backwards(client: EventStoreClient) -> None:
    stream = new_stream()
    ids = fill(client, stream, 7)

    forwards = client.read_stream(stream)
    assert [e.event_id for e in forwards] == ids
    assert [e.aggregate_version for e in forwards] == list(range(1, 8))
    assert numbers(forwards) == list(range(1, 8))

    backwards = client.read_stream(stream, backwards=True)
    assert [e.aggregate_version for e in backwards] == list(range(7, 0, -1))

    assert [
        e.aggregate_version
        for e in client.read_stream(stream, from_version=3, max_count=2)
    ] == [3, 4]
    assert [
        e.aggregate_version
        for e in client.read_stream(stream, from_version=5, max_count=3, backwards=True)
    ] == [5, 4, 3]
    assert client.read_stream(stream, from_version=8) == []


def test_read_errors(client: EventStoreClient) -> None:
    with pytest.raises(NotFound) as missing:
        client.read_stream(new_stream())
    assert missing.value.stream

    stream = new_stream()
    fill(client, stream, 1)
    with pytest.raises(InvalidArgument) as invalid:
        client.read_stream(stream, from_version=-1)
    assert "from_version" in invalid.value.details


def test_get_stream(client: EventStoreClient) -> None:
    stream = new_stream()
    fill(client, stream, 3)
    result = client.append(stream, [new_event("Numbered", {"n": 4})], 3)

    info = client.get_stream(stream)
    assert info.stream == stream
    assert info.current_version == 4
    assert info.partition == result.partition
    assert info.last.offset == result.offset
    assert info.first.offset <= info.last.offset
    assert client.stream_version(stream) == 4

    with pytest.raises(NotFound):
        client.get_stream(new_stream())
    assert client.stream_version(new_stream()) == 0


def test_repeated_append_returns_the_original_version(client: EventStoreClient) -> None:
    stream = new_stream()
    event = new_event("Numbered", {"n": 1})
    first = client.append(stream, [event], NO_STREAM)
    client.append(stream, [new_event("Numbered", {"n": 2})], 1)

    # The same event again, even with a stale expectation, writes nothing.
    again = client.append(stream, [event], NO_STREAM)
    assert again.current_version == first.current_version == 1
    assert client.stream_version(stream) == 2

    # The same id with other content is refused.
    other = new_event("Numbered", {"n": 99}, event_id=event.event_id)
    with pytest.raises(AlreadyExists) as clash:
        client.append(stream, [other], ANY)
    assert clash.value.event_id == event.event_id
    assert clash.value.version == 1
    assert client.stream_version(stream) == 2


def test_append_gives_events_without_id_one(client: EventStoreClient) -> None:
    stream = new_stream()
    event = new_event("Numbered", {"n": 1})
    event.event_id = ""
    client.append(stream, [event], NO_STREAM)

    assert event.event_id == "", "the caller's event is left as it was"
    (stored,) = client.read_stream(stream)
    assert uuid.UUID(stored.event_id)


def test_wait_ready(client: EventStoreClient) -> None:
    client.wait_ready(timeout=10)


def test_wait_ready_gives_up_on_a_silent_address() -> None:
    with EventStoreClient(f"127.0.0.1:{free_port()}", retry=NO_RETRY) as nobody:
        with pytest.raises(Unavailable) as unavailable:
            nobody.wait_ready(timeout=1.0)
        assert "not ready" in unavailable.value.details
