"""The analyzer's loop: deliveries in, analyses appended, acks out.

Each turn takes a batch of ``ContentSubmitted`` deliveries from the group's
persistent subscription (the sidecar filters by event type), runs the NLP on
all their texts at once, appends one ``ContentAnalyzed`` per submission to
the submission's stream, and only then settles the deliveries:

- ack when every submission of the delivery has its analysis appended;
- nack PARK, with the reason, when a submission cannot be parsed or its
  analysis cannot ever be appended (processing goes on with the others);
- nack RETRY when an append failed in a way a later attempt may overcome.

Reprocessing is harmless: the analysis's event id is derived from the
submission's (:func:`~eventstore_client.deterministic_event_id`) and its
content is a pure function of the submission and the pipeline, so the
sidecar answers a repeated append with the original version and writes
nothing. An append expects the stream to be at the submission's version;
when something else was appended meanwhile, the analyzer reads the stream's
version (GetStream) and appends again with that as the expectation.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from eventstore_client import (
    AlreadyExists,
    Delivery,
    Event,
    EventStoreClient,
    EventStoreError,
    FailedPrecondition,
    InvalidArgument,
    NackAction,
    PersistentSubscription,
    ResourceExhausted,
    Unavailable,
    WrongExpectedVersion,
    deterministic_event_id,
    new_event,
)

from content_analyzer.config import Config
from content_analyzer.nlp import Analysis, TextAnalyzer

logger = logging.getLogger(__name__)

#: SUBMITTED is the event type the analyzer consumes.
SUBMITTED = "ContentSubmitted"
#: ANALYZED is the event type the analyzer appends.
ANALYZED = "ContentAnalyzed"
#: SCHEMA_VERSION is the version of ANALYZED's data, in its metadata.
SCHEMA_VERSION = 1

#: PERMANENT are the append errors that no repetition overcomes.
PERMANENT = (InvalidArgument, ResourceExhausted, FailedPrecondition)

#: READY_WAIT bounds one wait for the sidecar's health, in seconds.
READY_WAIT = 10.0


class MalformedSubmission(ValueError):
    """MalformedSubmission is a ContentSubmitted event the analyzer cannot
    read; its message says why."""


@dataclass(frozen=True)
class Submission:
    """Submission is a parsed ContentSubmitted event."""

    delivery: Delivery
    event: Event
    content_id: str
    text: str

    @property
    def stream(self) -> str:
        return self.event.aggregate_id


def parse_submission(event: Event) -> tuple[str, str]:
    """parse_submission returns (content_id, text) of a ContentSubmitted
    event, or raises MalformedSubmission."""
    if not event.event_id:
        raise MalformedSubmission("the event has no event_id")
    if not event.aggregate_id:
        raise MalformedSubmission("the event has no aggregate_id")
    try:
        data = json.loads(event.data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MalformedSubmission(f"data is not JSON: {err}") from err
    if not isinstance(data, dict):
        raise MalformedSubmission("data is not a JSON object")
    content_id = data.get("content_id")
    if not isinstance(content_id, str) or not content_id:
        raise MalformedSubmission("data.content_id is missing or not a string")
    text = data.get("content")
    if not isinstance(text, str):
        raise MalformedSubmission("data.content is missing or not a string")
    return content_id, text


def analyzed_event(sub: Submission, analysis: Analysis, processor: str) -> Event:
    """analyzed_event builds the ContentAnalyzed event of a submission.

    Its id and bytes depend only on the submission, the analysis and the
    processor, so that a repeated append is recognised as such.
    """
    data = {
        "content_id": sub.content_id,
        "source_event_id": sub.event.event_id,
        "analysis_result": analysis.to_json(),
    }
    metadata = {"processor": processor, "schema_version": SCHEMA_VERSION}
    return new_event(
        ANALYZED,
        json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        metadata=json.dumps(metadata, separators=(",", ":")),
        event_id=deterministic_event_id(sub.event.event_id, ANALYZED),
    )


class Verdict(enum.IntEnum):
    """Verdict is how a delivery is settled; a higher verdict wins."""

    ACK = 0
    PARK = 1
    RETRY = 2


@dataclass
class Outcome:
    """Outcome collects what happened to a delivery's submissions."""

    verdict: Verdict = Verdict.ACK
    reasons: list[str] = field(default_factory=list)

    def add(self, verdict: Verdict, reason: str) -> None:
        self.verdict = max(self.verdict, verdict)
        self.reasons.append(reason)


@dataclass
class Stats:
    """Stats counts the analyzer's work since it started."""

    batches: int = 0
    deliveries: int = 0
    analyzed: int = 0
    acked: int = 0
    parked: int = 0
    retried: int = 0


class Analyzer:
    """Analyzer consumes submissions of its group and appends analyses.

    ``processor`` names the analyzer and its pipeline in the metadata of
    what it appends. :meth:`run` blocks until :meth:`stop`.
    """

    def __init__(
        self,
        client: EventStoreClient,
        text: TextAnalyzer,
        config: Config,
        processor: str,
    ) -> None:
        self.client = client
        self.text = text
        self.config = config
        self.processor = processor
        self.stats = Stats()
        self._stop = threading.Event()
        self._sub: PersistentSubscription | None = None

    def stop(self) -> None:
        """stop makes :meth:`run` return after the batch in hand is appended
        and acked. It is safe to call from a signal handler."""
        self._stop.set()
        sub = self._sub
        if sub is not None:
            sub.wake()

    def run(self) -> Stats:
        """run processes deliveries until stopped and returns the counts.

        It raises the subscription's error when reconnecting cannot help.
        """
        if not self._wait_ready():
            return self.stats
        sub = self.client.subscribe(
            self.config.group,
            event_types=[SUBMITTED],
            max_in_flight=self.config.window,
        )
        self._sub = sub
        logger.info(
            "analyzer started",
            extra={
                "group": self.config.group,
                "processor": self.processor,
                "batch_size": self.config.batch_size,
                "max_in_flight": self.config.window,
            },
        )
        pool = ThreadPoolExecutor(
            max_workers=self.config.append_workers, thread_name_prefix="append"
        )
        try:
            while not self._stop.is_set():
                batch = self._collect(sub)
                if batch:
                    self.handle(batch, pool)
        finally:
            # The batch in hand is settled; close sends its acks before it
            # ends the call.
            sub.close()
            pool.shutdown(wait=True)
            logger.info("analyzer stopped", extra=vars(self.stats))
        return self.stats

    def _wait_ready(self) -> bool:
        """_wait_ready waits for the sidecar until it serves or run is
        stopped; it returns whether the sidecar is ready."""
        while not self._stop.is_set():
            try:
                self.client.wait_ready(timeout=READY_WAIT)
                return True
            except Unavailable as err:
                logger.warning("sidecar not ready; waiting", extra={"err": err.details})
        return False

    def _collect(self, sub: PersistentSubscription) -> list[Delivery]:
        """_collect waits for a delivery, then takes more until the batch is
        full or batch_wait passed without one."""
        first = sub.next(timeout=1.0)
        if first is None:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.batch_wait
        while len(batch) < self.config.batch_size and not self._stop.is_set():
            left = deadline - time.monotonic()
            nxt = sub.next(timeout=left) if left > 0 else sub.next(timeout=0)
            if nxt is None:
                break
            batch.append(nxt)
        return batch

    def handle(self, batch: Sequence[Delivery], pool: ThreadPoolExecutor) -> None:
        """handle analyzes, appends and settles one batch of deliveries."""
        outcomes = {id(d): Outcome() for d in batch}
        submissions = self._parse(batch, outcomes)

        analyses = self.text.analyze([s.text for s in submissions])

        by_stream: dict[str, list[tuple[Submission, Event]]] = {}
        for sub, analysis in zip(submissions, analyses, strict=True):
            event = analyzed_event(sub, analysis, self.processor)
            by_stream.setdefault(sub.stream, []).append((sub, event))
        futures = [
            pool.submit(self._append_stream, stream, items)
            for stream, items in by_stream.items()
        ]
        for future in futures:
            for sub, verdict, reason in future.result():
                if verdict != Verdict.ACK:
                    outcomes[id(sub.delivery)].add(verdict, reason)

        for d in batch:
            self._settle(d, outcomes[id(d)])
        self.stats.batches += 1
        self.stats.deliveries += len(batch)
        self.stats.analyzed += len(submissions)
        logger.debug(
            "batch done",
            extra={
                "deliveries": len(batch),
                "submissions": len(submissions),
                "streams": len(by_stream),
                "analyzed_total": self.stats.analyzed,
            },
        )

    def _parse(
        self, batch: Sequence[Delivery], outcomes: dict[int, Outcome]
    ) -> list[Submission]:
        submissions = []
        for d in batch:
            for event in d.events:
                if event.event_type != SUBMITTED:
                    continue
                try:
                    content_id, text = parse_submission(event)
                except MalformedSubmission as err:
                    outcomes[id(d)].add(
                        Verdict.PARK, f"event {event.event_id or '?'}: {err}"
                    )
                    continue
                submissions.append(Submission(d, event, content_id, text))
        return submissions

    def _append_stream(
        self, stream: str, items: list[tuple[Submission, Event]]
    ) -> list[tuple[Submission, Verdict, str]]:
        """_append_stream appends a stream's analyses in order, each after
        the one before succeeded."""
        results = []
        known = 0
        for sub, event in items:
            expected = max(known, sub.event.aggregate_version)
            try:
                known = self._append(stream, event, expected)
                results.append((sub, Verdict.ACK, ""))
            except AlreadyExists as err:
                # The analysis exists with other content: a change of the
                # pipeline or a bug. Appending again cannot help.
                logger.error(
                    "analysis exists with other content",
                    extra={
                        "stream": stream,
                        "event_id": event.event_id,
                        "err": err.details,
                    },
                )
                results.append((sub, Verdict.PARK, f"{ANALYZED}: {err.details}"))
            except PERMANENT as err:
                results.append((sub, Verdict.PARK, f"append: {err}"))
            except EventStoreError as err:
                # Unavailable past the client's retries, conflicts past ours,
                # deadlines and internal errors: a later attempt may succeed.
                results.append((sub, Verdict.RETRY, f"append: {err}"))
        return results

    def _append(self, stream: str, event: Event, expected: int) -> int:
        """_append appends one analysis, re-reading the stream's version after
        a conflict, and returns the stream's version after it."""
        for attempt in range(self.config.conflict_retries + 1):
            try:
                return self.client.append(stream, [event], expected).current_version
            except WrongExpectedVersion as err:
                if attempt == self.config.conflict_retries:
                    raise
                expected = self.client.stream_version(stream)
                logger.debug(
                    "version conflict; appending at the stream's version",
                    extra={
                        "stream": stream,
                        "expected_version": err.expected,
                        "version": expected,
                    },
                )
        raise AssertionError("unreachable")

    def _settle(self, d: Delivery, outcome: Outcome) -> None:
        reason = "; ".join(outcome.reasons)
        extra = {
            "group": self.config.group,
            "partition": d.position.partition,
            "offset": d.position.offset,
            "redeliveries": d.redeliveries,
        }
        if outcome.verdict == Verdict.ACK:
            d.ack()
            self.stats.acked += 1
        elif outcome.verdict == Verdict.PARK:
            logger.warning("delivery parked", extra={**extra, "reason": reason})
            d.nack(NackAction.PARK, reason)
            self.stats.parked += 1
        else:
            logger.warning("delivery retried", extra={**extra, "reason": reason})
            d.nack(NackAction.RETRY, reason)
            self.stats.retried += 1
