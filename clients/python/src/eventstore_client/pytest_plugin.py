"""A pytest plugin that starts sidecars for tests against a real sidecar.

Load it with ``pytest_plugins = ["eventstore_client.pytest_plugin"]`` in a
conftest. The sidecar binary comes from ``SIDECAR_BIN`` (required). The
``start_sidecar`` fixture starts a sidecar on a topic of its own (or a
given one, to run several on one topic), and every sidecar started in the
session is stopped at its end. A failed test's report ends with the output
of the sidecars that were running.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Generator, Iterator

import pytest

from eventstore_client.testing import SidecarError, SidecarProcess, new_topic

#: OUTPUT_TAIL_LINES is how much of a sidecar's output a failure shows.
OUTPUT_TAIL_LINES = 60


class Sidecar(SidecarProcess):
    """Sidecar is a sidecar process owned by the test session."""

    #: shutdown describes unclean exits, reported in the terminal summary.
    shutdown: list[str]

    def check_alive(self) -> None:
        """check_alive fails the current test when the sidecar has exited."""
        code = self.poll()
        if code is not None:
            pytest.fail(
                f"sidecar exited with status {code}; its output:\n{self.output_tail()}",
                pytrace=False,
            )

    def stop_checked(self) -> None:
        """stop_checked stops the sidecar and records an unclean exit."""
        if self.process is None or self.process.poll() is not None:
            return
        code = self.stop()
        if code is None:
            self.shutdown.append("sidecar did not exit after SIGTERM; killed it")
        elif code not in (0, -signal.SIGTERM):
            self.shutdown.append(f"sidecar exited with status {code}")


SIDECARS_KEY = pytest.StashKey[list[Sidecar]]()

StartSidecar = Callable[..., Sidecar]


def sidecar_binary() -> str:
    """sidecar_binary returns SIDECAR_BIN or fails the session."""
    binary = os.environ.get("SIDECAR_BIN", "")
    if not binary:
        pytest.fail(
            "SIDECAR_BIN is not set: build the sidecar "
            "(go build -o /tmp/sidecar ./cmd/sidecar) and set SIDECAR_BIN to it",
            pytrace=False,
        )
    return binary


@pytest.fixture(scope="session")
def start_sidecar(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartSidecar]:
    """start_sidecar(topic=None, **env) starts a sidecar and returns it once
    it serves. Keyword arguments are SIDECAR_* variables for it."""
    binary = sidecar_binary()
    started: list[Sidecar] = []
    request.config.stash[SIDECARS_KEY] = started

    def start(topic: str | None = None, **env: str) -> Sidecar:
        base = tmp_path_factory.mktemp("sidecar")
        try:
            sc = Sidecar(
                binary,
                topic=topic or new_topic(),
                data_dir=base / "data",
                output_path=base / "output.log",
                env=env,
            )
            sc.shutdown = []
            started.append(sc)
            sc.start()
        except SidecarError as err:
            pytest.fail(str(err), pytrace=False)
        return sc

    try:
        yield start
    finally:
        for sc in started:
            sc.stop_checked()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with the running sidecars' output.

    Setup failures already carry it in their message.
    """
    report = yield
    if report.failed and report.when == "call":
        for sc in item.config.stash.get(SIDECARS_KEY, []):
            if sc.poll() is None:
                report.sections.append(
                    (
                        f"sidecar {sc.address} output (last {OUTPUT_TAIL_LINES} lines)",
                        sc.output_tail(OUTPUT_TAIL_LINES),
                    )
                )
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    for sc in config.stash.get(SIDECARS_KEY, []):
        terminalreporter.write_line(
            f"sidecar: {sc.address}, topic {sc.topic}, output {sc.output_path}"
        )
        for problem in sc.shutdown:
            terminalreporter.write_line(f"sidecar shutdown: {problem}", yellow=True)
        if sc.shutdown:
            terminalreporter.write_line(sc.output_tail())
