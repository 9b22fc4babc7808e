"""Fixtures for the analyzer's tests: sidecars, analyzer processes, the
pipeline and the lexicon.

The sidecars come from the client's pytest plugin (``SIDECAR_BIN``
required). Analyzer processes run ``python -m content_analyzer`` with the
test's interpreter and log JSON lines, which the tests read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from corpus import LEXICON
from spacy.language import Language

from content_analyzer.nlp import load_pipeline

pytest_plugins = ["eventstore_client.pytest_plugin"]

#: STOP_TIMEOUT bounds the wait for an analyzer to exit after SIGTERM.
STOP_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def nlp() -> Language:
    """nlp is the pipeline the analyzer loads by default."""
    pipeline, _ = load_pipeline("en_core_web_sm")
    return pipeline


@pytest.fixture(scope="session")
def lexicon_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lexicon_file holds LEXICON, with a comment and blank lines."""
    path = tmp_path_factory.mktemp("lexicon") / "toxic.txt"
    path.write_text("# toxic lemmas\n\n" + "\n".join(LEXICON) + "\n", encoding="utf-8")
    return path


class AnalyzerProcess:
    """AnalyzerProcess is one analyzer run by a test.

    Its stderr (JSON log lines) is parsed into ``records`` and copied to
    ``log_path``.
    """

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "content_analyzer"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.log_path.open("ab") as log:
            for line in self.process.stderr:
                log.write(line)
                log.flush()
                try:
                    record = json.loads(line)
                except ValueError:
                    record = {"msg": line.decode("utf-8", "replace").rstrip()}
                with self._cond:
                    self.records.append(record)
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        """wait_for returns the first log record that matches, or fails."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for record in self.records[seen:]:
                    if match(record):
                        return record
                seen = len(self.records)
                if self.process.poll() is not None and not self._reader.is_alive():
                    pytest.fail(
                        f"analyzer exited with {self.process.returncode} before {what}; "
                        f"its log:\n{self.tail()}",
                        pytrace=False,
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {what} within {timeout:.0f}s; log:\n{self.tail()}")
                self._cond.wait(min(left, 0.5))

    def stop(self) -> dict[str, Any]:
        """stop sends SIGTERM, expects a clean exit and returns the final
        counts the analyzer logged."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"analyzer did not stop after SIGTERM; log:\n{self.tail()}")
        self._reader.join(timeout=10)
        assert code == 0, f"analyzer exited with {code}; log:\n{self.tail()}"
        return self.wait_for(
            lambda r: r.get("msg") == "analyzer stopped", "final counts"
        )

    def kill(self) -> None:
        """kill sends SIGKILL: the analyzer dies wherever it is."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


StartAnalyzer = Callable[..., AnalyzerProcess]


@pytest.fixture
def start_analyzer(tmp_path: Path, lexicon_file: Path) -> Iterator[StartAnalyzer]:
    """start_analyzer(sidecar_addr, group, **env) starts an analyzer
    process; every one still running at the end of the test is killed."""
    started: list[AnalyzerProcess] = []

    def start(sidecar_addr: str, group: str, **env: str) -> AnalyzerProcess:
        full = {k: v for k, v in os.environ.items() if not k.startswith("ANALYZER_")}
        full.update(
            ANALYZER_SIDECAR_ADDR=sidecar_addr,
            ANALYZER_GROUP=group,
            ANALYZER_TOXIC_LEXICON_FILE=str(lexicon_file),
            ANALYZER_LOG_LEVEL="debug",
        )
        full.update({f"ANALYZER_{k.upper()}": v for k, v in env.items()})
        proc = AnalyzerProcess(full, tmp_path / f"analyzer-{len(started)}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
