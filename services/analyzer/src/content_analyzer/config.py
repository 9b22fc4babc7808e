"""The analyzer's settings, read from ANALYZER_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from content_analyzer.nlp import Lexicon


class ConfigError(ValueError):
    """ConfigError is a setting that is missing or malformed; its message
    names the variable."""


@dataclass(frozen=True)
class Config:
    """Config is every setting of the analyzer. Each field names its
    variable and default."""

    #: ANALYZER_SIDECAR_ADDR: the sidecar's gRPC address (127.0.0.1:50051).
    sidecar_addr: str = "127.0.0.1:50051"
    #: ANALYZER_GROUP: the consumer group (analyzer).
    group: str = "analyzer"
    #: ANALYZER_SPACY_PIPELINE: the spaCy pipeline to load (en_core_web_sm).
    pipeline: str = "en_core_web_sm"
    #: ANALYZER_TOXIC_LEXICON_FILE: a file of toxic lemmas, one per line.
    #: ANALYZER_TOXIC_LEXICON: toxic lemmas, comma separated. Both may be
    #: set; the lexicon is their union. Neither: no text is toxic.
    lexicon: Lexicon = field(default_factory=lambda: Lexicon(()))
    #: ANALYZER_BATCH_SIZE: most deliveries analyzed together (32).
    batch_size: int = 32
    #: ANALYZER_BATCH_WAIT: seconds to wait for a batch to fill (0.05).
    batch_wait: float = 0.05
    #: ANALYZER_MAX_IN_FLIGHT: unacked deliveries the sidecar may send
    #: (0: twice the batch size).
    max_in_flight: int = 0
    #: ANALYZER_APPEND_WORKERS: streams appended to concurrently (8).
    append_workers: int = 8
    #: ANALYZER_CONFLICT_RETRIES: appends after a version conflict before
    #: the delivery is nacked to be retried later (5).
    conflict_retries: int = 5
    #: ANALYZER_LOG_LEVEL: debug, info, warning or error (info).
    log_level: str = "info"

    @property
    def window(self) -> int:
        """window is the max_in_flight asked of the sidecar."""
        return self.max_in_flight or 2 * self.batch_size

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """from_env reads and validates the ANALYZER_* variables."""
        env = os.environ if env is None else env
        errors: list[str] = []

        def get(name: str, default: str) -> str:
            return env.get(f"ANALYZER_{name}", "").strip() or default

        def integer(name: str, default: int, low: int) -> int:
            raw = get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                errors.append(f"ANALYZER_{name}: {raw!r} is not an integer")
                return default
            if value < low:
                errors.append(f"ANALYZER_{name}: must be at least {low}, got {value}")
            return value

        def seconds(name: str, default: float) -> float:
            raw = get(name, str(default))
            try:
                value = float(raw)
            except ValueError:
                errors.append(f"ANALYZER_{name}: {raw!r} is not a number of seconds")
                return default
            if value < 0:
                errors.append(f"ANALYZER_{name}: must not be negative, got {value}")
            return value

        lexicon = Lexicon(get("TOXIC_LEXICON", "").split(","))
        path = get("TOXIC_LEXICON_FILE", "")
        if path:
            try:
                lexicon = lexicon.union(Lexicon.from_file(Path(path)))
            except OSError as err:
                errors.append(f"ANALYZER_TOXIC_LEXICON_FILE: cannot read {path}: {err}")
        level = get("LOG_LEVEL", "info").lower()
        if level not in ("debug", "info", "warning", "error"):
            errors.append(
                f"ANALYZER_LOG_LEVEL: must be debug, info, warning or error, got {level!r}"
            )
        cfg = cls(
            sidecar_addr=get("SIDECAR_ADDR", cls.sidecar_addr),
            group=get("GROUP", cls.group),
            pipeline=get("SPACY_PIPELINE", cls.pipeline),
            lexicon=lexicon,
            batch_size=integer("BATCH_SIZE", cls.batch_size, 1),
            batch_wait=seconds("BATCH_WAIT", cls.batch_wait),
            max_in_flight=integer("MAX_IN_FLIGHT", cls.max_in_flight, 0),
            append_workers=integer("APPEND_WORKERS", cls.append_workers, 1),
            conflict_retries=integer("CONFLICT_RETRIES", cls.conflict_retries, 0),
            log_level=level,
        )
        if errors:
            raise ConfigError("; ".join(errors))
        return cfg
