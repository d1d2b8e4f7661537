"""End-to-end episodes on all three games: every call, op and step lands in the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from automem.engine.episodes.timetravel import memory_after_step
from automem.engine.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.engine.structure.registry import register_structure
from automem.engine.structure.seeds import v0
from automem.schemas.events import (
    EpisodeEnded,
    EpisodeStarted,
    LLMCalled,
    MemoryOpApplied,
    StepTaken,
)

GAMES = [("crafter", None), ("nethack", None), ("minihack", None)]


def events_of(data: Path, episode: str) -> list:
    with LmdbLog(data) as log:
        return [r.event for r in log.read_stream(f"ep/{episode}")]


@pytest.mark.slow
@pytest.mark.parametrize("env,task", GAMES)
def test_random_policy_episode(tmp_path: Path, env: str, task: str | None) -> None:
    data = tmp_path / "d"
    [summary] = run(RunRequest(env=env, task=task, episodes=1, max_steps=12, seed=3, policy="random", data=str(data)))
    events = events_of(data, summary.id)
    assert isinstance(events[0], EpisodeStarted) and isinstance(events[-1], EpisodeEnded)
    steps = [e for e in events if isinstance(e, StepTaken)]
    assert summary.steps == len(steps) > 0 and [s.step for s in steps] == list(range(len(steps)))
    ops = [e for e in events if isinstance(e, MemoryOpApplied)]
    assert summary.memory_ops == sum(1 for o in ops if o.phase != "init") > 0
    assert any(isinstance(e, LLMCalled) and e.phase == "log" for e in events)
    # memory derived from the log equals what the agent had at every step
    with LmdbLog(data) as log:
        for s in steps:
            assert memory_after_step(log, SnapshotStore(log), summary.id, s.step).digest() == s.memory_digest
    # the same seed gives the same episode, event for event
    [again] = run(RunRequest(env=env, task=task, episodes=1, max_steps=12, seed=3, policy="random", data=str(data)))
    strip = lambda evs: [e for e in evs if not isinstance(e, EpisodeStarted)]  # noqa: E731 (ids differ)
    assert strip(events_of(data, again.id)) == strip(events)


@pytest.mark.slow
def test_file_policy_invalid_action_and_exhaustion(tmp_path: Path) -> None:
    responses = [
        "<|SEARCH|>map_notes.txt|tree<|END|><|ACTION|>Move West<|END|>",  # step 0 plan
        "<|APPEND|>actions_log.txt|moved west<|END|><|APPEND|>../escape.txt|x<|END|><|DONE|>",  # step 1 log
        "<|ACTION|>Fly To The Moon<|END|>",  # step 1 plan: invalid, falls back
        "<|DONE|>",  # step 2 log
    ] + ["I am not sure what to do."] * 5  # step 2 plan: no action in any of v0's 5 PLAN turns
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in responses))
    data = tmp_path / "d"
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=10, seed=0, policy=f"file:{path}",
                               structure="v0", data=str(data)))
    assert summary.cause.startswith("model_error") and summary.steps == 3
    events = events_of(data, summary.id)
    steps = [e for e in events if isinstance(e, StepTaken)]
    assert [(s.raw_action, s.action, s.valid) for s in steps] == [
        ("Move West", "Move West", True), ("Fly To The Moon", "Noop", False), ("", "Noop", False)]
    ops = [e for e in events if isinstance(e, MemoryOpApplied) and e.phase != "init"]
    assert [(o.op.kind, o.op.path, o.ok) for o in ops] == [
        ("search", "map_notes.txt", True), ("append", "actions_log.txt", True), ("append", "../escape.txt", False)]
    assert isinstance(events[-1], EpisodeEnded) and events[-1].length == 3
    assert not (tmp_path / "escape.txt").exists()


def automem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from automem.engine.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "AUTOMEM_DATA"})


@pytest.mark.slow
def test_cli_run_json_and_table(tmp_path: Path) -> None:
    proc = automem("run", "--env", "minihack", "--episodes", "2", "--max-steps", "5", "--policy", "random",
                   "--workers", "2", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["episodes"]
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        assert {"id", "env", "task", "seed", "steps", "return", "progression", "memory_ops", "structure", "models"} <= set(r)
    listed = json.loads(automem("episodes", "--json", cwd=tmp_path).stdout)["episodes"]
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in rows)
    proc = automem("run", "--env", "crafter", "--max-steps", "3", "--policy", "random", cwd=tmp_path)
    assert proc.returncode == 0 and "progression" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("args,needle", [
    (["--env", "chess"], "unknown env"),
    (["--env", "minihack", "--task", "nope"], "task"),
    (["--policy", "gpt:foo"], "policy"),
    (["--policy", "file:/nonexistent.jsonl"], "nonexistent"),
    (["--policy", "openai:m@http://127.0.0.1:9"], "127.0.0.1:9"),
    (["--policy", "local:/nonexistent-model"], "nonexistent-model"),
    (["--structure", "v99"], "no structure"),
])
def test_cli_run_bad_input(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = automem("run", "--max-steps", "2", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_short_episode_with_the_real_local_model(tmp_path: Path, converted_model: Path) -> None:
    data = tmp_path / "d"
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=2, seed=0, policy="local", data=str(data)))
    assert summary.steps == 2 and summary.models == {"agent": "smollm2-135m-instruct"}
    calls = [e for e in events_of(data, summary.id) if isinstance(e, LLMCalled)]
    # auto's small structure: a lookup turn, then the action turn; one LOG turn
    assert [(c.phase, c.turn) for c in calls] == [("plan", 0), ("plan", 1), ("log", 0), ("plan", 0), ("plan", 1)]
    assert all(c.response and c.completion_tokens > 0 and c.prompt_tokens > 0 for c in calls)


@pytest.mark.slow
def test_episode_through_an_openai_compatible_server(tmp_path: Path, served_model: tuple[str, str]) -> None:
    model, url = served_model
    data = tmp_path / "d"
    # v0 with short answers and two PLAN turns: the path under test is the client and the
    # protocol, and a CPU server slows down sharply as a 200-token, 5-turn conversation grows
    with LmdbLog(data) as log:
        brief = register_structure(log, msgspec.structs.replace(v0("minihack"), max_tokens=24, max_plan_turns=2))
    [summary] = run(RunRequest(env="minihack", task=None, episodes=1, max_steps=1, seed=0,
                               policy=f"openai:{model}@{url}", structure=brief, data=str(data)))
    assert summary.steps == 1 and summary.cause == "max_steps"
    calls = [e for e in events_of(data, summary.id) if isinstance(e, LLMCalled)]
    assert 1 <= len(calls) <= 2 and all(c.error is None and c.completion_tokens > 0 for c in calls)


@pytest.mark.parametrize("env,action,fallback", [("nethack", "far east", "search"), ("minihack", "south", "search")])
def test_file_policy_on_nethack_and_minihack(tmp_path: Path, env: str, action: str, fallback: str) -> None:
    responses = [f"<|ACTION|>{action}<|END|>",
                 "<|APPEND|>dungeon_map.txt|level 1: corridor east<|END|><|WRITE|>game_rules.txt|x<|END|><|DONE|>",
                 "<|SEARCH|>dungeon_map.txt|corridor<|END|><|ACTION|>dance wildly<|END|>"]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in responses))
    [summary] = run(RunRequest(env=env, task=None, episodes=1, max_steps=2, seed=2, policy=f"file:{path}",
                               structure="v0", data=str(tmp_path / "d")))
    events = events_of(tmp_path / "d", summary.id)
    steps = [e for e in events if isinstance(e, StepTaken)]
    assert [(s.action, s.valid) for s in steps] == [(action, True), (fallback, False)]
    ops = [(e.op.kind, e.op.path, e.ok) for e in events if isinstance(e, MemoryOpApplied) and e.phase != "init"]
    assert ops == [("append", "dungeon_map.txt", True), ("write", "game_rules.txt", False),  # read-only file
                   ("search", "dungeon_map.txt", True)]
    assert steps[-1].facts.depth == 1 and steps[-1].facts.position is not None


@pytest.mark.slow
def test_two_model_mode_splits_memory_and_action_roles(tmp_path: Path) -> None:
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=6, seed=0, policy="random",
                               memory_policy="random", data=str(tmp_path / "d")))
    assert set(summary.models) == {"agent", "memory"}
    calls = [e for e in events_of(tmp_path / "d", summary.id) if isinstance(e, LLMCalled)]
    assert {c.role for c in calls if c.phase == "log"} == {"memory"}
    for step in range(summary.steps):  # memory lookups first, then the action model, once, last
        roles = [c.role for c in calls if c.phase == "plan" and c.step == step]
        assert roles[-1] == "agent" and set(roles[:-1]) == {"memory"} and len(roles) >= 2
