"""Fixtures that start a sidecar for the tests and connect clients to it.

The sidecar binary comes from ``SIDECAR_BIN`` (required). It inherits the
test's environment, so ``SIDECAR_KAFKA_BROKERS`` and ``SIDECAR_REDIS_URL``
point it at a real Kafka and Redis when set; without them it runs embedded.
Each session gets its own gRPC port, topic and data directory, so runs never
share state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from eventstore_client import EventStoreClient

if TYPE_CHECKING:
    from eventstore_client.pytest_plugin import Sidecar, StartSidecar

pytest_plugins = ["eventstore_client.pytest_plugin"]


@pytest.fixture(scope="session")
def sidecar(start_sidecar: StartSidecar) -> Sidecar:
    """sidecar is the session's shared sidecar, on a topic of its own."""
    return start_sidecar()


@pytest.fixture
def client(sidecar: Sidecar) -> Iterator[EventStoreClient]:
    """client is a client connected to the session's sidecar."""
    sidecar.check_alive()
    with EventStoreClient(sidecar.address) as client:
        yield client
