"""Replay: faithful episodes verify at every step; a tampered log diverges exactly there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from automem.engine.agent.prompts import prompt_digest
from automem.engine.episodes.replay import replay
from automem.engine.log import LmdbLog
from automem.engine.log.lmdb.log import u64
from automem.engine.policy.base import PolicyRequest
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.codec import decode_record, encode_record
from automem.schemas.events import LLMCalled, MemoryOpApplied, StepTaken


def record(env: str, tmp_path: Path, steps: int = 30, policy: str = "random", structure: str = "auto") -> tuple[Path, str]:
    data = tmp_path / "d"
    [summary] = run(RunRequest(env=env, task=None, episodes=1, max_steps=steps, seed=5, policy=policy,
                               structure=structure, data=str(data)))
    return data, summary.id


@pytest.mark.slow
@pytest.mark.parametrize("env", ["crafter", "nethack", "minihack"])
def test_random_episodes_verify_fully(env: str, tmp_path: Path) -> None:
    data, episode = record(env, tmp_path)
    with LmdbLog(data) as log:
        result = replay(log, episode)
        head = log.head(f"ep/{episode}")
    assert result.divergence is None and result.ended and result.verified == result.steps > 0
    with LmdbLog(data) as log:
        assert log.head(f"ep/{episode}") == head  # replay wrote nothing


@pytest.mark.parametrize("env", ["nethack", "minihack"])
def test_file_policy_episodes_verify_fully(env: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = ["<|ACTION|>far east<|END|>", "<|APPEND|>dungeon_map.txt|east corridor<|END|><|DONE|>",
             "<|SEARCH|>*|corridor<|END|>", "<|ACTION|>Search<|END|>"]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    data, episode = record(env, tmp_path, steps=2, policy=f"file:{path}", structure="v0")
    with LmdbLog(data) as log:
        result = replay(log, episode)
    assert result.divergence is None and result.verified == result.steps == 2


@pytest.mark.slow
def test_the_local_model_episode_verifies(tmp_path: Path, converted_model: Path) -> None:
    data, episode = record("crafter", tmp_path, steps=2, policy="local")
    with LmdbLog(data) as log:
        result = replay(log, episode)
    assert result.divergence is None and result.verified == 2


def observed(data: Path, episode: str) -> list[tuple[LLMCalled, PolicyRequest]]:
    seen: list[tuple[LLMCalled, PolicyRequest]] = []
    with LmdbLog(data) as log:
        assert replay(log, episode, observe=lambda call, request: seen.append((call, request))).divergence is None
        assert [c for c, _ in seen] == [r.event for r in log.read_stream(f"ep/{episode}") if isinstance(r.event, LLMCalled)]
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("env", ["crafter", "minihack"])
def test_the_observer_sees_every_request_as_it_was_sent(env: str, tmp_path: Path) -> None:
    data, episode = record(env, tmp_path, steps=12, structure="v0")
    seen = observed(data, episode)
    assert len(seen) > 12 and {c.phase for c, _ in seen} == {"log", "plan"}
    assert all(prompt_digest(list(r.messages)) == c.prompt_digest for c, r in seen)


@pytest.mark.slow
def test_the_observer_sees_answer_prefixes_of_the_local_model(tmp_path: Path, converted_model: Path) -> None:
    data, episode = record("crafter", tmp_path, steps=2, policy="local")
    seen = observed(data, episode)
    assert {c.phase for c, _ in seen} == {"log", "plan"}
    for call, request in seen:
        assert prompt_digest(list(request.messages)) == call.prompt_digest
        assert request.messages[-1]["role"] == "assistant" and call.response.startswith(request.messages[-1]["content"])


def tamper(data: Path, episode: str, pick, change) -> int:
    """Rewrite the first record `pick` accepts with `change` applied; return its step."""
    with LmdbLog(data) as log:
        target = next(r for r in log.read_stream(f"ep/{episode}") if pick(r.event))
        with log.env.begin(write=True) as txn:
            raw = txn.get(u64(target.offset), db=log.dbs["events"])
            rec = decode_record(raw, "test")
            txn.put(u64(target.offset), encode_record(msgspec.structs.replace(rec, event=change(rec.event))),
                    db=log.dbs["events"])
        return target.event.step


def flip(text: str) -> str:
    """Change exactly one byte (one character) of a text."""
    i = len(text) // 2
    return text[:i] + ("x" if text[i] != "x" else "y") + text[i + 1:]


@pytest.mark.slow
@pytest.mark.parametrize("what,pick,change,fields", [
    ("observation", lambda e: isinstance(e, StepTaken) and e.step == 7,
     lambda e: msgspec.structs.replace(e, observation=flip(e.observation)), {"observation"}),
    ("memory op", lambda e: isinstance(e, MemoryOpApplied) and e.phase == "log" and e.op.kind == "append" and e.step >= 5,
     lambda e: msgspec.structs.replace(e, op=msgspec.structs.replace(e.op, args=(flip(e.op.args[0]),))), {"op"}),
    ("response", lambda e: isinstance(e, LLMCalled) and e.phase == "log" and "<|APPEND|>" in e.response and e.step >= 5,
     lambda e: msgspec.structs.replace(e, response=e.response.replace("saw", "sax", 1)), {"op"}),
])
def test_tampering_is_found_at_that_step_and_field(tmp_path: Path, what: str, pick, change, fields: set[str]) -> None:
    data, episode = record("crafter", tmp_path, steps=40)
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    step = tamper(copy, episode, pick, change)
    with LmdbLog(copy) as log:
        result = replay(log, episode)
    assert result.divergence is not None, what
    assert result.divergence.step == step and result.divergence.field in fields, result.divergence
    assert result.verified == step  # every step before it verified
    with LmdbLog(data) as log:  # the original still verifies
        assert replay(log, episode).divergence is None


@pytest.mark.slow
def test_cli_replay_exit_codes(tmp_path: Path) -> None:
    data, episode = record("minihack", tmp_path, steps=10)
    cli = [sys.executable, "-c", "from automem.engine.cli import main; main()", "replay"]
    ok = subprocess.run([*cli, episode, "--data", str(data), "--json"], capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["verified"] == json.loads(ok.stdout)["steps"]
    tamper(data, episode, lambda e: isinstance(e, StepTaken) and e.step == 3,
           lambda e: msgspec.structs.replace(e, reward=e.reward + 1))
    bad = subprocess.run([*cli, episode, "--data", str(data), "--json"], capture_output=True, text=True)
    assert bad.returncode == 3
    divergence = json.loads(bad.stdout)["divergence"]
    assert (divergence["step"], divergence["field"]) == (3, "reward")
    assert divergence["expected"] == divergence["actual"] + 1
    missing = subprocess.run([*cli, "nope", "--data", str(data)], capture_output=True, text=True)
    assert missing.returncode == 2 and "unknown episode" in missing.stderr


@pytest.mark.slow
def test_a_crashed_run_replays_partially(tmp_path: Path) -> None:
    data, episode = record("crafter", tmp_path, steps=20)
    with LmdbLog(data) as log:  # keep the log as it stood after step 9: as if the process died there
        events = [r.event for r in log.read_stream(f"ep/{episode}")]
    cut = next(i for i, e in enumerate(events) if isinstance(e, StepTaken) and e.step == 9) + 1
    with LmdbLog(tmp_path / "crashed") as log:
        src = LmdbLog(data)
        for rec in src.read_stream("structure/crafter"):
            log.append("structure/crafter", rec.seq, [rec.event])
        log.append(f"ep/{episode}", 0, events[:cut])
        src.close()
        result = replay(log, episode)
    assert not result.ended and result.divergence is None and result.verified == 10


@pytest.mark.slow
def test_a_structure_missing_from_the_log_is_a_clear_error(tmp_path: Path) -> None:
    data, episode = record("crafter", tmp_path, steps=3)
    with LmdbLog(data) as src, LmdbLog(tmp_path / "copy") as dst:  # the episode alone, not its structure
        dst.append(f"ep/{episode}", 0, [r.event for r in src.read_stream(f"ep/{episode}")])
    cli = [sys.executable, "-c", "from automem.engine.cli import main; main()", "replay", episode]
    out = subprocess.run([*cli, "--data", str(tmp_path / "copy")], capture_output=True, text=True)
    assert out.returncode == 2 and "not in this log" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_an_episode_on_kafka_replays(broker, tmp_path: Path) -> None:  # noqa: ANN001 (fixture from conftest)
    from automem.engine.log import open_log

    bus = f"kafka://{broker.url}/r{tmp_path.name[-8:]}"
    [summary] = run(RunRequest(env="nethack", task=None, episodes=1, max_steps=15, seed=2, policy="random", bus=bus))
    with open_log(bus, None, create=False) as log:
        result = replay(log, summary.id)
    assert result.divergence is None and result.verified == result.steps == 15 and result.ended


@pytest.mark.slow
def test_an_older_structure_version_still_replays(tmp_path: Path) -> None:
    """A newer structure in the log (as loop 1 would add) does not change how old episodes replay."""
    from automem.engine.structure.registry import register_structure
    from automem.engine.structure.seeds import v0

    data, episode = record("crafter", tmp_path, steps=8, structure="v0")
    with LmdbLog(data) as log:
        newer = msgspec.structs.replace(v0("crafter"), max_log_turns=3, recent_steps=5)
        recorded = next(iter(log.read_stream(f"ep/{episode}"))).event.structure
        assert register_structure(log, newer, "a later revision") != recorded
        result = replay(log, episode)
    assert result.divergence is None and result.verified == result.steps == 8
