"""Sidecar processes for tests of applications that use the client.

:class:`SidecarProcess` starts the sidecar binary on a free port with a
topic of its own, waits until its health service reports SERVING, and stops
it with SIGTERM (or kills it). It inherits the environment, so
``SIDECAR_KAFKA_BROKERS`` and ``SIDECAR_REDIS_URL`` point it at a real Kafka
and Redis when set; without them it runs embedded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from eventstore_client.client import EventStoreClient
from eventstore_client.errors import Unavailable

#: START_TIMEOUT bounds the wait for a sidecar to serve, in seconds.
START_TIMEOUT = 60.0
#: STOP_TIMEOUT bounds the wait after SIGTERM before SIGKILL, in seconds; it
#: exceeds the sidecar's own shutdown budget (SIDECAR_SHUTDOWN_TIMEOUT, 20 s).
STOP_TIMEOUT = 30.0


class SidecarError(RuntimeError):
    """SidecarError is a sidecar that did not start or stop as asked."""


def free_port() -> int:
    """free_port returns a TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def real_backends() -> bool:
    """real_backends tells whether the environment names a Kafka and a Redis."""
    return bool(os.environ.get("SIDECAR_KAFKA_BROKERS")) and bool(
        os.environ.get("SIDECAR_REDIS_URL")
    )


def new_topic(prefix: str = "pytest") -> str:
    """new_topic returns a topic name no other run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class SidecarProcess:
    """SidecarProcess is a sidecar binary run by a test.

    ``binary`` is the sidecar executable, ``topic`` its event topic and
    ``data_dir`` its embedded broker's data directory. ``env`` adds to (or,
    with an empty value, removes from) the inherited environment. The gRPC
    address is a free port on 127.0.0.1 chosen at construction; the process
    starts with :meth:`start`.
    """

    def __init__(
        self,
        binary: str,
        *,
        topic: str,
        data_dir: Path,
        output_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise SidecarError(f"{binary} is not an executable file")
        self.binary = binary
        self.topic = topic
        self.data_dir = data_dir
        self.output_path = output_path
        self.address = f"127.0.0.1:{free_port()}"
        self._extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """environment returns the variables the sidecar runs with."""
        env = dict(os.environ)
        env.update(self._extra_env)
        # An empty value means unset: the sidecar then runs embedded.
        for name in [k for k, v in env.items() if k.startswith("SIDECAR_") and not v]:
            env.pop(name)
        env["SIDECAR_GRPC_ADDR"] = self.address
        # The HTTP and metrics listeners default to fixed ports; give each
        # process its own.
        env.setdefault("SIDECAR_HTTP_ADDR", f"127.0.0.1:{free_port()}")
        env.setdefault("SIDECAR_METRICS_ADDR", f"127.0.0.1:{free_port()}")
        env["SIDECAR_KAFKA_TOPIC"] = self.topic
        env["SIDECAR_DATA_DIR"] = str(self.data_dir)
        env.pop("SIDECAR_BIN", None)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """start runs the binary and waits until it serves, or raises
        :class:`SidecarError` with the end of its output."""
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        with self.output_path.open("ab") as output:
            self.process = subprocess.Popen(
                [self.binary],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """wait_ready waits until the sidecar reports SERVING."""
        deadline = time.monotonic() + timeout
        with EventStoreClient(self.address) as client:
            while True:
                code = self.poll()
                if code is not None:
                    raise SidecarError(
                        f"sidecar exited with status {code} before serving on "
                        f"{self.address}; its output:\n{self.output_tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SidecarError(
                        f"sidecar did not serve on {self.address} within "
                        f"{timeout:.0f}s; its output:\n{self.output_tail()}"
                    )
                try:
                    client.wait_ready(timeout=min(1.0, left))
                    return
                except Unavailable:
                    continue

    def poll(self) -> int | None:
        """poll returns the exit status, or None while the sidecar runs."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """stop sends SIGTERM, waits at most timeout seconds, then kills.

        It returns the exit status, or None when it had to kill.
        """
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            return None

    def kill(self) -> None:
        """kill sends SIGKILL and reaps the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output_tail(self, lines: int = 60) -> str:
        """output_tail returns the last lines the sidecar wrote."""
        try:
            text = self.output_path.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            return f"(cannot read {self.output_path}: {err})"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"
