"""Shared fixtures (a fresh embedded store per test; one Kafka-protocol broker per session) and
the markers, derived from what a test uses so they cannot drift from it:

- kafka: it takes the `broker` fixture or its module starts a Broker;
- browser: it takes the `browser` fixture (Debian's chromium, headless);
- subprocess: its module runs the CLI or another program as a child process;
- gpu: marked by hand; skipped where torch sees no CUDA device;
- vllm: it lives in tests/vllm (run in .venv-vllm by ./scripts/test; skipped where vLLM is absent);
- slow: marked by hand on the tests that take a second or more on 2 cores (a model, training,
  a broker, many subprocesses): `pytest -m "not slow"` runs the other ~370 in about 1.5 min.
"""

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


VLLM_TIER = Path(__file__).parent / "vllm"


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LmdbLog]:
    with LmdbLog(tmp_path / "data") as opened:
        yield opened


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    started = Broker().start()
    yield started
    started.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        names = getattr(item, "fixturenames", ())
        if "broker" in names or hasattr(module, "Broker"):
            item.add_marker(pytest.mark.kafka)
        if "browser" in names:
            item.add_marker(pytest.mark.browser)
        if any(hasattr(module, name) for name in ("subprocess", "automem", "AUTOMEM")):
            item.add_marker(pytest.mark.subprocess)
        if VLLM_TIER in item.path.parents:
            item.add_marker(pytest.mark.vllm)
        if item.get_closest_marker("gpu") and not _cuda():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
