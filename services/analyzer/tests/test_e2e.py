"""The analyzer end to end: real sidecars on real Kafka and Redis, analyzer
processes, and what ends up in the streams.

Each test has a topic and a group of its own. Completion is observed with a
subscription without a group that watches ContentAnalyzed events; the
verdict comes from reading every stream once the analyzers stopped.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import StartAnalyzer
from corpus import LEXICON, submission_data, texts
from eventstore_client import (
    NO_STREAM,
    Event,
    EventStoreClient,
    deterministic_event_id,
    new_event,
)
from eventstore_client.pytest_plugin import Sidecar, StartSidecar
from eventstore_client.testing import new_topic, real_backends
from spacy.language import Language

#: DONE_TIMEOUT bounds the wait for all analyses of a test, in seconds.
DONE_TIMEOUT = 180.0


@pytest.fixture(autouse=True)
def _needs_real_backends() -> None:
    if not real_backends():
        pytest.fail(
            "the analyzer's end-to-end tests run on a real Kafka and Redis: "
            "set SIDECAR_KAFKA_BROKERS and SIDECAR_REDIS_URL (make test-python does)",
            pytrace=False,
        )


@dataclass
class Sent:
    """Sent is one ContentSubmitted event the test appended."""

    stream: str
    event: Event
    data: dict[str, Any]
    abusive: bool


def submit(client: EventStoreClient, count: int, pairs: int = 0) -> list[Sent]:
    """submit appends count submissions; the last 2*pairs share a stream
    two by two, so that two analyses go to one stream."""
    sent: list[Sent] = []
    stream = ""
    for i, t in enumerate(texts(count)):
        if i < count - 2 * pairs or (i - (count - 2 * pairs)) % 2 == 0:
            stream = f"content-{uuid.uuid4()}"
        data = submission_data(t.text)
        event = new_event(
            "ContentSubmitted",
            data,
            metadata={"user_id": "user-1", "schema_version": 1},
        )
        version = client.stream_version(stream)
        client.append(stream, [event], version if version else NO_STREAM)
        sent.append(Sent(stream, event, data, t.abusive))
    return sent


class Watcher:
    """Watcher collects the source ids of ContentAnalyzed events as they are
    appended, to tell when the analyzers are done."""

    def __init__(self, client: EventStoreClient) -> None:
        self._sub = client.subscribe("", event_types=["ContentAnalyzed"])
        self.sources: set[str] = set()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for d in self._sub:
            with self._cond:
                for e in d.events:
                    self.sources.add(json.loads(e.data)["source_event_id"])
                self._cond.notify_all()
            d.ack()

    def wait_for(self, wanted: set[str], timeout: float = DONE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not wanted <= self.sources:
                left = deadline - time.monotonic()
                assert left > 0, (
                    f"{len(wanted - self.sources)} of {len(wanted)} submissions "
                    f"not analyzed within {timeout:.0f}s"
                )
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        self._sub.close()


@pytest.fixture
def topic_sidecar(start_sidecar: StartSidecar) -> Sidecar:
    """topic_sidecar is a sidecar on a topic of its own."""
    return start_sidecar(new_topic("analyzer"))


@pytest.fixture
def client(topic_sidecar: Sidecar) -> Iterator[EventStoreClient]:
    with EventStoreClient(topic_sidecar.address) as c:
        yield c


@pytest.fixture
def watcher(client: EventStoreClient) -> Iterator[Watcher]:
    w = Watcher(client)
    yield w
    w.close()


@pytest.fixture
def group() -> str:
    return f"analyzer-{uuid.uuid4().hex[:8]}"


def expected_analysis(nlp: Language, text: str) -> dict[str, Any]:
    """expected_analysis runs the pipeline directly on one text."""
    doc = nlp(text)
    return {
        "entities": [[e.text, e.label_] for e in doc.ents],
        "is_toxic": any(t.lemma_.lower() in LEXICON for t in doc),
        "token_count": len(doc),
    }


def verify(client: EventStoreClient, nlp: Language, sent: list[Sent]) -> None:
    """verify checks that every submission has exactly one analysis in its
    stream, after it, with what the pipeline finds and the lexicon says."""
    by_stream: dict[str, list[Sent]] = {}
    for s in sent:
        by_stream.setdefault(s.stream, []).append(s)
    for stream, subs in by_stream.items():
        events = client.read_stream(stream)
        analyses = [e for e in events if e.event_type == "ContentAnalyzed"]
        assert len(analyses) == len(subs), (
            f"{stream}: {len(analyses)} analyses of {len(subs)}"
        )
        versions = {e.event_id: e.aggregate_version for e in events}
        for s in subs:
            (analysis,) = [
                a
                for a in analyses
                if json.loads(a.data)["source_event_id"] == s.event.event_id
            ]
            assert analysis.event_id == deterministic_event_id(
                s.event.event_id, "ContentAnalyzed"
            )
            assert analysis.aggregate_version > versions[s.event.event_id]
            data = json.loads(analysis.data)
            assert data["content_id"] == s.data["content_id"]
            assert data["analysis_result"] == expected_analysis(nlp, s.data["content"]), (
                s.data["content"]
            )
            assert data["analysis_result"]["is_toxic"] == s.abusive, s.data["content"]
            meta = json.loads(analysis.metadata)
            assert meta["schema_version"] == 1
            assert meta["processor"].startswith("content-analyzer/en_core_web_sm-3.8")


def ids(sent: list[Sent]) -> set[str]:
    return {s.event.event_id for s in sent}


def test_every_submission_is_analyzed_once(
    topic_sidecar: Sidecar,
    client: EventStoreClient,
    watcher: Watcher,
    start_analyzer: StartAnalyzer,
    nlp: Language,
    group: str,
) -> None:
    sent = submit(client, 200, pairs=10)
    assert sum(s.abusive for s in sent) == 40

    analyzer = start_analyzer(topic_sidecar.address, group)
    watcher.wait_for(ids(sent))
    stats = analyzer.stop()

    verify(client, nlp, sent)
    assert stats["parked"] == 0
    assert stats["analyzed"] >= 200

    # The stop acked everything: the group's next analyzer has nothing to do.
    after = start_analyzer(topic_sidecar.address, group)
    after.wait_for(lambda r: r.get("msg") == "caught up", "the caught-up marker")
    assert after.stop()["deliveries"] == 0


def test_a_killed_analyzer_leaves_no_duplicates(
    topic_sidecar: Sidecar,
    client: EventStoreClient,
    watcher: Watcher,
    start_analyzer: StartAnalyzer,
    nlp: Language,
    group: str,
) -> None:
    sent = submit(client, 200, pairs=10)

    # Small batches, one stream at a time: the kill lands mid-way.
    first = start_analyzer(
        topic_sidecar.address, group, batch_size="4", append_workers="1"
    )
    first.wait_for(
        lambda r: r.get("msg") == "batch done" and r.get("analyzed_total", 0) >= 60,
        "60 analyses",
    )
    first.kill()
    done_before = {
        json.loads(e.data)["source_event_id"]
        for s in {s.stream for s in sent}
        for e in client.read_stream(s)
        if e.event_type == "ContentAnalyzed"
    }
    assert 60 <= len(done_before) < 200, f"{len(done_before)} analyzed before the kill"

    second = start_analyzer(topic_sidecar.address, group)
    watcher.wait_for(ids(sent))
    second.stop()

    verify(client, nlp, sent)


def test_two_analyzers_share_the_work(
    start_sidecar: StartSidecar,
    start_analyzer: StartAnalyzer,
    nlp: Language,
    group: str,
) -> None:
    # One sidecar per analyzer, as in two pods, on one topic.
    topic = new_topic("analyzer")
    sidecars = [start_sidecar(topic), start_sidecar(topic)]
    analyzers = [start_analyzer(sc.address, group) for sc in sidecars]
    for sc in sidecars:
        wait_assigned(sc, group)

    with EventStoreClient(sidecars[0].address) as client:
        watcher = Watcher(client)
        try:
            sent = submit(client, 200, pairs=10)
            watcher.wait_for(ids(sent))
        finally:
            watcher.close()
        stats = [a.stop() for a in analyzers]
        verify(client, nlp, sent)

    assert all(s["analyzed"] > 0 for s in stats), stats
    assert sum(s["analyzed"] for s in stats) >= 200


def wait_assigned(sc: Sidecar, group: str, timeout: float = 60.0) -> None:
    """wait_assigned waits until the sidecar logged partitions of the event
    topic assigned to a member of group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in sc.output_path.read_text(
            encoding="utf-8", errors="replace"
        ).splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if (
                record.get("msg") == "partitions assigned"
                and record.get("group") == group
                and record.get("partitions")
            ):
                return
        time.sleep(0.2)
    pytest.fail(
        f"sidecar {sc.address} assigned no partitions to {group} within {timeout:.0f}s"
    )


@dataclass
class Malformed:
    stream: str
    event_id: str
    reason: str
    extra: dict[str, Any] = field(default_factory=dict)


def test_malformed_submissions_are_parked_and_the_rest_goes_on(
    topic_sidecar: Sidecar,
    client: EventStoreClient,
    watcher: Watcher,
    start_analyzer: StartAnalyzer,
    nlp: Language,
    group: str,
) -> None:
    bad_payloads = {
        b"{not json": "not JSON",
        b'["a", "list"]': "not a JSON object",
        b'{"content_id": "c-9"}': "data.content",
        b'{"content_id": 12, "content": "Ada Lovelace"}': "data.content_id",
    }
    malformed = []
    good = submit(client, 15)
    for payload, reason in bad_payloads.items():
        stream = f"content-{uuid.uuid4()}"
        event = new_event("ContentSubmitted", payload)
        client.append(stream, [event], NO_STREAM)
        malformed.append(Malformed(stream, event.event_id, reason))
    good += submit(client, 15)

    analyzer = start_analyzer(topic_sidecar.address, group)
    watcher.wait_for(ids(good))
    deadline = time.monotonic() + 60
    while (
        len(client.list_parked(group)) < len(malformed) and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    stats = analyzer.stop()

    verify(client, nlp, good)
    parked = client.list_parked(group)
    assert sorted(e.event_id for p in parked for e in p.events) == sorted(
        m.event_id for m in malformed
    )
    for m in malformed:
        (p,) = [p for p in parked if p.events[0].event_id == m.event_id]
        assert m.reason in p.reason, p.reason
        assert [e.event_type for e in client.read_stream(m.stream)] == [
            "ContentSubmitted"
        ]
    # Parked once each, never retried.
    assert stats["parked"] == len(malformed)
    assert stats["retried"] == 0
