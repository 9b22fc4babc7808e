"""Fixtures that start a sidecar for the tests and connect clients to it.

The sidecar binary comes from ``SIDECAR_BIN`` (required). It inherits the
test's environment, so ``SIDECAR_KAFKA_BROKERS`` and ``SIDECAR_REDIS_URL``
point it at a real Kafka and Redis when set; without them it runs embedded.
Each session gets its own gRPC port, topic and data directory, so runs never
share state.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from eventstore_client import EventStoreClient

#: START_TIMEOUT bounds the wait for the sidecar's gRPC port, in seconds.
START_TIMEOUT = 60.0
#: STOP_TIMEOUT bounds the wait after SIGTERM before SIGKILL, in seconds; it
#: exceeds the sidecar's own shutdown budget (SIDECAR_SHUTDOWN_TIMEOUT, 20 s).
STOP_TIMEOUT = 30.0
#: OUTPUT_TAIL_LINES is how much of the sidecar's output a failure shows.
OUTPUT_TAIL_LINES = 60


@dataclass
class Sidecar:
    """Sidecar is a running sidecar process owned by the test session."""

    process: subprocess.Popen[bytes]
    address: str
    topic: str
    output_path: Path
    #: shutdown describes an unclean exit, reported in the terminal summary.
    shutdown: list[str] = field(default_factory=list)

    def output_tail(self, lines: int = OUTPUT_TAIL_LINES) -> str:
        """output_tail returns the last lines the sidecar wrote."""
        try:
            text = self.output_path.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            return f"(cannot read {self.output_path}: {err})"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def check_alive(self) -> None:
        """check_alive fails the current test when the sidecar has exited."""
        code = self.process.poll()
        if code is not None:
            pytest.fail(
                f"sidecar exited with status {code}; its output:\n{self.output_tail()}",
                pytrace=False,
            )


SIDECAR_KEY = pytest.StashKey[Sidecar]()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sidecar_env(address: str, topic: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # An empty value means unset: the sidecar then runs embedded.
    for name in ("SIDECAR_KAFKA_BROKERS", "SIDECAR_REDIS_URL"):
        if not env.get(name):
            env.pop(name, None)
    env["SIDECAR_GRPC_ADDR"] = address
    env["SIDECAR_KAFKA_TOPIC"] = topic
    env["SIDECAR_DATA_DIR"] = str(data_dir)
    return env


def _wait_ready(sidecar: Sidecar, timeout: float) -> None:
    """_wait_ready waits until the gRPC port answers or fails the session."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(sidecar.address) as channel:
        ready = grpc.channel_ready_future(channel)
        while True:
            code = sidecar.process.poll()
            if code is not None:
                pytest.fail(
                    f"sidecar exited with status {code} before serving on "
                    f"{sidecar.address}; its output:\n{sidecar.output_tail()}",
                    pytrace=False,
                )
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                ready.result(timeout=min(1.0, left))
                return
            except grpc.FutureTimeoutError:
                continue
    pytest.fail(
        f"sidecar did not serve gRPC on {sidecar.address} within {timeout:.0f}s; "
        f"its output:\n{sidecar.output_tail()}",
        pytrace=False,
    )


def _stop(sidecar: Sidecar) -> None:
    """_stop sends SIGTERM, waits bounded, then kills the sidecar."""
    process = sidecar.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            sidecar.shutdown.append(
                f"sidecar did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM; killed it"
            )
            process.kill()
            process.wait(timeout=10)
            return
    code = process.returncode
    if code not in (0, -signal.SIGTERM):
        sidecar.shutdown.append(f"sidecar exited with status {code}")


@pytest.fixture(scope="session")
def sidecar(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    """sidecar starts the binary named by SIDECAR_BIN and stops it at the end."""
    binary = os.environ.get("SIDECAR_BIN", "")
    if not binary:
        pytest.fail(
            "SIDECAR_BIN is not set: build the sidecar "
            "(go build -o /tmp/sidecar ./cmd/sidecar) and set SIDECAR_BIN to it",
            pytrace=False,
        )
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"SIDECAR_BIN={binary} is not an executable file", pytrace=False)

    base = tmp_path_factory.mktemp("sidecar")
    address = f"127.0.0.1:{_free_port()}"
    topic = f"pytest-{uuid.uuid4().hex[:12]}"
    output_path = base / "output.log"
    env = _sidecar_env(address, topic, base / "data")

    with output_path.open("wb") as output:
        process = subprocess.Popen(
            [binary],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sidecar = Sidecar(process, address, topic, output_path)
    request.config.stash[SIDECAR_KEY] = sidecar
    try:
        _wait_ready(sidecar, START_TIMEOUT)
        yield sidecar
    finally:
        _stop(sidecar)


@pytest.fixture
def client(sidecar: Sidecar) -> Iterator[EventStoreClient]:
    """client is a client connected to the session's sidecar."""
    sidecar.check_alive()
    with EventStoreClient(sidecar.address) as client:
        yield client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with the sidecar's recent output.

    Setup failures already carry it in their message.
    """
    report = yield
    sidecar = item.config.stash.get(SIDECAR_KEY, None)
    if report.failed and report.when == "call" and sidecar is not None:
        report.sections.append(
            (f"sidecar output (last {OUTPUT_TAIL_LINES} lines)", sidecar.output_tail())
        )
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    sidecar = config.stash.get(SIDECAR_KEY, None)
    if sidecar is None:
        return
    terminalreporter.write_line(
        f"sidecar: {sidecar.address}, topic {sidecar.topic}, output {sidecar.output_path}"
    )
    for problem in sidecar.shutdown:
        terminalreporter.write_line(f"sidecar shutdown: {problem}", yellow=True)
    if sidecar.shutdown:
        terminalreporter.write_line(sidecar.output_tail())
