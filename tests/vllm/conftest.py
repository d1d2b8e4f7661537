"""The vLLM tier: run by `./scripts/test` in `.venv-vllm` (`./scripts/setup --with-vllm` makes it:
vLLM's CPU build pins its own torch and transformers, so it never joins the default install).

Its one adapter is a memory version trained by `automem train` (a few steps at a high
learning rate on short examples, so its answers to those prompts differ from the base's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automem.engine.cli import main
from automem.engine.log import LmdbLog
from automem.engine.policy.convert import MODEL_ID
from automem.schemas.events import ModelVersionCreated

from ..support.training import conversation, write_dataset

ENABLE = "vLLM is not installed here: `./scripts/setup --with-vllm` makes .venv-vllm, and ./scripts/test then runs these"
FAST = {"max_steps": 6, "batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0}


def trained_version(root: Path, dataset: str, first: int) -> tuple[Path, str]:
    """(store, version name): `automem train` on six examples numbered from `first`."""
    data = root / "data"
    write_dataset(data, dataset, [conversation(i) for i in range(first, first + 6)], [MODEL_ID])
    config = root / "fast.json"
    config.write_text(json.dumps(FAST))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", str(data), "--config", str(config), "--json"])
    assert exit_.value.code == 0
    with LmdbLog(data, create=False) as log:
        [created] = [r.event for s in log.streams("model") for r in log.read_stream(s)
                     if isinstance(r.event, ModelVersionCreated)]
    return data, created.name


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, converted_model: Path) -> tuple[Path, str]:
    return trained_version(tmp_path_factory.mktemp("trained"), "ds-vllm", 0)
