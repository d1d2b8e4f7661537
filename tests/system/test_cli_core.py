"""The CLI contract for the core commands: JSON shapes, and exit 2 with one line on bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from automem.engine.log import LmdbLog
from automem.engine.log.lmdb.log import u64
from automem.engine.memory import EMPTY, apply
from automem.schemas.events import (
    EpisodeEnded,
    EpisodeStarted,
    MemoryOp,
    MemoryOpApplied,
    StepTaken,
)

from ..support.cli import assert_user_error, automem


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with one small episode: three steps, two memory writes per step."""
    data = tmp_path / "automem-data"
    state, events = EMPTY, [EpisodeStarted(episode="e1", env="crafter", task="default", seed=0, max_steps=3,
                                           structure="v0", models={"agent": "file"}, engine_version="t")]
    for step in range(3):
        for op in (MemoryOp("append", "notes.txt", (f"step {step}",)), MemoryOp("write", "plan.txt", (f"plan {step}",))):
            state, result = apply(state, op)
            events.append(MemoryOpApplied(step=step, phase="log", turn=0, op=op, ok=result.ok, result_digest=""))
        events.append(StepTaken(step=step, raw_action="noop", action="Noop", valid=True, reward=0.0, done=False,
                                observation="o", observation_digest="d", memory_digest=state.digest()))
    events.append(EpisodeEnded(return_=0.0, progression=0.0, length=3, cause="max_steps", memory_ops=6))
    with LmdbLog(data) as log:
        log.append("ep/e1", 0, events)
    return tmp_path


def test_memory_at_step_json(store: Path) -> None:
    proc = automem("memory", "e1", "--at", "1", "--json", cwd=store)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"episode": "e1", "step": 1,
                                       "files": {"notes.txt": "step 0\nstep 1\n", "plan.txt": "plan 1"}}
    proc = automem("memory", "e1", "--at", "0", "--file", "plan.txt", "--json", cwd=store)
    assert json.loads(proc.stdout)["files"] == {"plan.txt": "plan 0"}


def test_episodes_json(store: Path) -> None:
    proc = automem("episodes", "--json", cwd=store)
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)["episodes"]
    assert row["id"] == "e1" and row["steps"] == 3 and row["memory_ops"] == 6 and row["return"] == 0.0
    assert {"id", "env", "task", "seed", "steps", "return", "progression", "memory_ops", "structure", "models"} <= set(row)


@pytest.mark.slow
def test_bad_input_exits_2_with_one_line(store: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(automem("episodes", cwd=empty), "no automem data")
    assert_user_error(automem("memory", "e1", "--at", "0", "--data", str(empty / "nope"), cwd=store), "no automem data")
    assert_user_error(automem("memory", "nope", "--at", "0", cwd=store), "unknown episode")
    assert_user_error(automem("memory", "e1", "--at", "9", cwd=store), "out of range")
    assert_user_error(automem("memory", "e1", "--at", "0", "--file", "x.txt", cwd=store), "no file")
    assert_user_error(automem("bench", "nope", cwd=store), "unknown benchmark")
    assert_user_error(automem("episodes", "--bus", "redis://x", cwd=store), "unknown bus scheme")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "data.mdb").write_bytes(b"not lmdb" * 1000)
    assert_user_error(automem("episodes", "--data", str(tmp_path / "garbage"), cwd=store), "not a valid automem data directory")


def test_corrupted_record_exits_2_and_loses_nothing(store: Path) -> None:
    data = store / "automem-data"
    with LmdbLog(data) as log:
        with log.env.begin(write=True) as txn:
            last = log.end_offset() - 1
            txn.put(u64(last), b"\xff\x00junk", db=log.dbs["events"])
    assert_user_error(automem("episodes", cwd=store), "corrupted record", f"offset {last}")
    with LmdbLog(data) as log:
        assert log.head("ep/e1") == last + 1
        assert [r.offset for r in itertools.islice(log.read_all(), last)] == list(range(last))  # the rest still reads


@pytest.mark.slow
def test_memory_diff_names_the_ops_responsible(store: Path) -> None:
    proc = automem("memory", "e1", "--diff", "0", "2", "--json", cwd=store)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["from"], doc["to"]) == (0, 2) and set(doc["files"]) == {"notes.txt", "plan.txt"}
    notes = doc["files"]["notes.txt"]
    assert notes["status"] == "changed" and "+step 1" in notes["diff"] and "+step 2" in notes["diff"]
    assert [(o["step"], o["op"]) for o in notes["ops"]] == [(1, "append"), (2, "append")]
    assert_user_error(automem("memory", "e1", cwd=store), "exactly one of")
    assert_user_error(automem("memory", "e1", "--diff", "0", "9", cwd=store), "out of range")
