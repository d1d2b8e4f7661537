"""`automem loop` as a subprocess, with a scripted reviewer and a few training steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from automem.engine.structure.seeds import v0
from automem.schemas.structure import encode_structure

CLI = [sys.executable, "-c", "from automem.engine.cli import main; main()"]
LOOP = [*CLI, "loop"]


FAST = {"max_steps": 2, "batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0}


def _reviewer(path: Path) -> str:
    """A reviewer that proposes one structural change of v0-small (the fallback action)."""
    doc = encode_structure(msgspec.structs.replace(v0("crafter", small=True), fallback_action="Do")).decode()
    path.write_text(json.dumps({"text": f"Act when unsure.\n<|PROPOSAL|>{doc}"}) + "\n")
    return f"file:{path}"


def _args(data: Path, reviewer: str, *extra: str) -> list[str]:
    return ["run", "--data", str(data), "--policy", "random", "--structure", "v0-small", "--loops", "1",
            "--reviewer", reviewer, "--episodes", "3", "--max-steps", "20", "--json", *extra]


def kafka_stores(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """The driver's and the trainer's data folders, sharing the dataset files as deploy/'s one
    volume does, and the environment of the services (a few optimizer steps on the CPU)."""
    driver, trainer = tmp_path / "driver", tmp_path / "trainer"
    trainer.mkdir()
    (driver / "datasets").mkdir(parents=True)
    (trainer / "datasets").symlink_to(driver / "datasets")
    config = tmp_path / "fast.json"
    config.write_text(json.dumps(FAST))
    env = {**os.environ, "AUTOMEM_KAFKA_MAX_POLL_MS": "6000", "AUTOMEM_TRAIN_CONFIG": str(config),
           "AUTOMEM_TRAIN_DEVICE": "cpu"}
    return driver, trainer, env


def service(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`automem ARGS` as a background process, its stderr in `log`."""
    return subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))

