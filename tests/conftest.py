"""Shared fixtures: a fresh embedded store per test; one Kafka-protocol broker per session."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from automem.engine.log import LmdbLog

from .support.broker import Broker
from .support.policies import (  # noqa: F401
    converted_model,
    local_policy,
    random_adapter,
    served_model,
    silent_server,
    uncached_policy,
)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LmdbLog]:
    with LmdbLog(tmp_path / "data") as opened:
        yield opened


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    started = Broker().start()
    yield started
    started.stop()
