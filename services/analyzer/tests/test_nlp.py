"""The analysis itself, its configuration and its memory use."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest
from corpus import LEXICON
from eventstore_client import Event, deterministic_event_id
from spacy.language import Language

from content_analyzer.config import Config, ConfigError
from content_analyzer.nlp import Lexicon, PipelineNotFound, TextAnalyzer, load_pipeline
from content_analyzer.worker import (
    ANALYZED,
    MalformedSubmission,
    Submission,
    analyzed_event,
    parse_submission,
)


def test_a_trained_english_pipeline_is_installed(nlp: Language) -> None:
    assert nlp.lang == "en"
    for component in ("ner", "lemmatizer", "tagger", "parser"):
        assert component in nlp.pipe_names
    assert nlp.meta["version"].startswith("3.8")


def test_unknown_pipeline_is_reported() -> None:
    with pytest.raises(PipelineNotFound, match="xx_no_such_pipeline"):
        load_pipeline("xx_no_such_pipeline")


def test_entities_toxicity_and_tokens(nlp: Language) -> None:
    analyzer = TextAnalyzer(nlp, Lexicon(LEXICON))
    clean, abusive, near_miss = analyzer.analyze(
        [
            "Marie Curie moved from Warsaw to Paris to study at the Sorbonne.",
            "Only morons would trust Siemens with their savings.",
            "That was an idiotic plan by Airbus in Toulouse.",
        ]
    )

    assert ("Marie Curie", "PERSON") in clean.entities
    assert ("Warsaw", "GPE") in clean.entities
    assert ("Paris", "GPE") in clean.entities
    assert not clean.is_toxic
    assert clean.token_count == 13
    # "morons" is the lemma "moron"; "idiotic" is not "idiot".
    assert abusive.is_toxic
    assert not near_miss.is_toxic


def test_lexicon_matches_lowercased_lemmas() -> None:
    lexicon = Lexicon(["  Idiot ", "", "MORON"])
    assert lexicon.lemmas == {"idiot", "moron"}
    assert lexicon.matches(["you", "be", "an", "IDIOT"])
    assert not lexicon.matches(["idiotic"])


def test_config_defaults() -> None:
    cfg = Config.from_env({})
    assert cfg.group == "analyzer"
    assert cfg.pipeline == "en_core_web_sm"
    assert cfg.sidecar_addr == "127.0.0.1:50051"
    assert len(cfg.lexicon) == 0
    assert cfg.window == 2 * cfg.batch_size


def test_config_lexicon_from_file_and_list(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.txt"
    path.write_text("# comment\nScum\n\n  jerk\n", encoding="utf-8")
    cfg = Config.from_env(
        {
            "ANALYZER_TOXIC_LEXICON_FILE": str(path),
            "ANALYZER_TOXIC_LEXICON": "idiot, Moron",
        }
    )
    assert cfg.lexicon.lemmas == {"scum", "jerk", "idiot", "moron"}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ANALYZER_BATCH_SIZE": "0"}, "ANALYZER_BATCH_SIZE"),
        ({"ANALYZER_BATCH_SIZE": "many"}, "ANALYZER_BATCH_SIZE"),
        ({"ANALYZER_BATCH_WAIT": "-1"}, "ANALYZER_BATCH_WAIT"),
        ({"ANALYZER_LOG_LEVEL": "loud"}, "ANALYZER_LOG_LEVEL"),
        (
            {"ANALYZER_TOXIC_LEXICON_FILE": "/nonexistent/lexicon"},
            "ANALYZER_TOXIC_LEXICON_FILE",
        ),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Config.from_env(env)


def submitted(data: bytes, **fields: object) -> Event:
    event = Event(
        event_id="4b2c1e7a-0000-4000-8000-000000000001",
        aggregate_id="content-1",
        event_type="ContentSubmitted",
        aggregate_version=1,
        data=data,
    )
    for name, value in fields.items():
        setattr(event, name, value)
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        pytest.param(submitted(b"\xff\xfe"), "not JSON", id="not-utf8"),
        pytest.param(submitted(b"{text"), "not JSON", id="not-json"),
        pytest.param(submitted(b'["a"]'), "not a JSON object", id="array"),
        pytest.param(submitted(b'{"content": "hi"}'), "content_id", id="no-content-id"),
        pytest.param(
            submitted(b'{"content_id": 7, "content": "hi"}'), "content_id", id="numeric-id"
        ),
        pytest.param(submitted(b'{"content_id": "c"}'), "data.content is missing", id="no-content"),
        pytest.param(
            submitted(b'{"content_id": "c", "content": 5}'), "data.content is missing", id="content-not-string"
        ),
        pytest.param(
            submitted(b'{"content_id": "c", "content": "x"}', event_id=""),
            "event_id",
            id="no-id",
        ),
    ],
)
def test_malformed_submissions(event: Event, reason: str) -> None:
    with pytest.raises(MalformedSubmission, match=reason):
        parse_submission(event)


def test_analysis_event_is_a_pure_function_of_its_inputs(nlp: Language) -> None:
    event = submitted(
        json.dumps(
            {"content_id": "c-1", "content": "Ada Lovelace lived in London."}
        ).encode()
    )
    content_id, text = parse_submission(event)
    sub = Submission(delivery=None, event=event, content_id=content_id, text=text)  # type: ignore[arg-type]
    analyzer = TextAnalyzer(nlp, Lexicon(LEXICON))

    first = analyzed_event(sub, analyzer.analyze([text])[0], "content-analyzer/test")
    again = analyzed_event(sub, analyzer.analyze([text])[0], "content-analyzer/test")

    assert first.SerializeToString() == again.SerializeToString()
    assert first.event_id == deterministic_event_id(event.event_id, ANALYZED)
    assert first.event_type == ANALYZED
    assert json.loads(first.data) == {
        "content_id": "c-1",
        "source_event_id": event.event_id,
        "analysis_result": {
            "entities": [["Ada Lovelace", "PERSON"], ["London", "GPE"]],
            "is_toxic": False,
            "token_count": 6,
        },
    }
    assert json.loads(first.metadata) == {
        "processor": "content-analyzer/test",
        "schema_version": 1,
    }


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def random_texts(rng: random.Random, count: int, words: int) -> list[str]:
    def word() -> str:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 11)))

    return [" ".join(word() for _ in range(words)) for _ in range(count)]


def test_memory_stays_bounded_on_streaming_text(nlp: Language) -> None:
    # Every word is new to the pipeline, as in a stream of user content:
    # without clean-up each would stay in the vocabulary for good.
    analyzer = TextAnalyzer(nlp, Lexicon(LEXICON))
    rng = random.Random(11)
    for _ in range(3):
        analyzer.analyze(random_texts(rng, 64, 20))
    strings_before = len(nlp.vocab.strings)
    rss_before = rss_mb()

    batches, per_batch, words = 40, 64, 20
    for _ in range(batches):
        results = analyzer.analyze(random_texts(rng, per_batch, words))
        assert all(r.token_count == words for r in results)

    # About 51,000 new words went through; none stayed.
    strings_after = len(nlp.vocab.strings)
    assert strings_after == strings_before, (
        f"{strings_after - strings_before} strings stayed"
    )
    growth = rss_mb() - rss_before
    assert growth < 0.1 * rss_before, (
        f"RSS grew by {growth:.0f} MB from {rss_before:.0f} MB"
    )
