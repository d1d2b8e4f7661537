"""Shared fixtures: a fresh embedded store per test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from automem.engine.log import LmdbLog


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LmdbLog]:
    with LmdbLog(tmp_path / "data") as opened:
        yield opened
