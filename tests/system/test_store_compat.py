"""A store written by 0.4.0 still reads, replays byte for byte and scores the same: every
read command prints what 0.4.0 printed for it (tests/fixtures/store-0.4.0/golden.json)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-0.4.0"
AUTOMEM = [sys.executable, "-c", "from automem.engine.cli import main; main()"]


def cli(data: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if k != "AUTOMEM_DATA"}
    proc = subprocess.run([*AUTOMEM, *args, "--data", str(data), "--json"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads((FIXTURE / "golden.json").read_text())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE / "store", tmp_path / "store")
    return tmp_path / "store"


@pytest.mark.slow
def test_old_store_reads_replays_and_scores_the_same(data: Path, golden: dict[str, Any]) -> None:
    listed = cli(data, "episodes")
    for row in listed["episodes"]:  # 0.7.0 added which agent played: every 0.4.0 episode is the memory agent's
        assert row.pop("agent") == "memory"
    assert listed == golden["episodes"]
    episodes = golden["per_episode"]
    assert len(episodes) == 5
    for episode, want in episodes.items():
        last = str(want["replay"]["steps"] - 1)
        assert cli(data, "replay", episode) == want["replay"]
        assert want["replay"]["divergence"] is None
        assert cli(data, "audit", episode) == want["audit"]
        assert cli(data, "memory", episode, "--at", last) == want["memory"]
        assert _shown(data, episode) == want["show"]
    assert cli(data, "score") == golden["score"]
    for episode, want in episodes.items():
        assert _shown(data, episode) == want["show_scored"]


def _shown(data: Path, episode: str) -> dict[str, Any]:
    """`show --json` as 0.4.0 printed it: 0.8.0 added the memory probes at each step, none in an old store."""
    shown = cli(data, "show", episode)
    for step in shown["steps"]:
        assert step.pop("probes") == []
    return shown
