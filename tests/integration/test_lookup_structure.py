"""The small lookup structure: a PLAN turn that searches memory before the action turn, so a
tiny model's decisions read what it wrote (and write credit can flow), replayed exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from automem.engine.episodes.replay import replay
from automem.engine.log import LmdbLog
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.engine.structure.check import validate
from automem.engine.structure.seeds import LOOKUP_PRIME, seed, small_lookup, v0
from automem.schemas.events import LLMCalled, MemoryOp, MemoryOpApplied, StepTaken
from automem.schemas.structure import decode_structure, encode_structure, structure_version

# continuations after each turn's prefix: step 0 plans (lookup, action), then each step logs and plans
ANSWERS = ["water<|END|>", "Noop<|END|>",
           "saw water 2 east<|END|>", "water<|END|>", "Move Left<|END|>",
           "tree<|END|>", "tree<|END|>", "Noop<|END|>"]  # fmt: skip


def test_the_seeds_keep_their_versions_and_the_lookup_seed_is_valid() -> None:
    # a field added later is left out of a document that does not use it: old versions stand
    assert structure_version(v0("crafter", small=True)) == "crafter-v0-small-caea55727105bb28285a8cae"
    assert structure_version(v0("nethack")) == "nethack-v0-c14aa6b7551bbdeb04a3f56a"
    assert b"plan_lookup_prime" not in encode_structure(v0("minihack"))
    for env in ("crafter", "nethack", "minihack"):
        lookup = small_lookup(env)
        assert validate(lookup) == [] and seed(env, "v0-small-lookup") == lookup
        assert decode_structure(encode_structure(lookup)) == lookup and lookup.plan_lookup_prime == LOOKUP_PRIME
    assert seed("crafter", "v9") is None
    too_long = msgspec.structs.replace(small_lookup("crafter"), plan_lookup_prime="x" * 5000)
    assert any("plan_lookup_prime is over" in p for p in validate(too_long))


@pytest.fixture(scope="module")
def episode(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("lookup")
    answers = root / "answers.jsonl"
    answers.write_text("".join(json.dumps({"text": t}) + "\n" for t in ANSWERS))
    data = str(root / "data")
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=3, seed=0, policy=f"file:{answers}",
                               structure="v0-small-lookup", data=data))
    return data, summary.id


def test_plan_looks_memory_up_before_it_acts_and_replays(episode: tuple[str, str]) -> None:
    data, ep = episode
    with LmdbLog(data) as log:
        events = [r.event for r in log.read_stream(f"ep/{ep}")]
        result = replay(log, ep)
    assert result.divergence is None and result.verified == 3 and result.ended
    plans = [(c.step, c.turn, c.response) for c in events if isinstance(c, LLMCalled) and c.phase == "plan"]
    assert plans == [(0, 0, "<|SEARCH|>*|water<|END|>"), (0, 1, "<|ACTION|>Noop<|END|>"),
                     (1, 0, "<|SEARCH|>*|water<|END|>"), (1, 1, "<|ACTION|>Move Left<|END|>"),
                     (2, 0, "<|SEARCH|>*|tree<|END|>"), (2, 1, "<|ACTION|>Noop<|END|>")]
    lookups = [o for o in events if isinstance(o, MemoryOpApplied) and o.phase == "plan"]
    assert [o.op.kind for o in lookups] == ["search"] * 3
    # step 1's lookup reads the file as its LOG wrote it: the decision now depends on a write
    [write] = [o for o in events if isinstance(o, MemoryOpApplied) and o.phase == "log" and o.step == 1]
    assert write.op == MemoryOp("append", "actions_log.txt", ("saw water 2 east",))
    assert lookups[1].read_versions["actions_log.txt"] == write.written_versions["actions_log.txt"]


def test_the_lookup_structure_is_a_choice_on_the_command_line(tmp_path: Path) -> None:
    from tests.support.cli import automem

    proc = automem("run", "--data", str(tmp_path / "d"), "--policy", "random", "--max-steps", "4",
                   "--structure", "v0-small-lookup", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [summary] = json.loads(proc.stdout)["episodes"]
    assert summary["structure"].startswith("crafter-v0-small-lookup-")
    # the random agent continues each prefix as a model would: a keyword, an action, a line
    with LmdbLog(tmp_path / "d") as log:
        calls = [r.event for r in log.read_stream(f"ep/{summary['id']}") if isinstance(r.event, LLMCalled)]
    shape = re.compile(r"<\|(SEARCH\|>\*\||ACTION\|>|APPEND\|>actions_log\.txt\|)[\w ]+<\|END\|>")
    assert [c.response for c in calls if not shape.fullmatch(c.response)] == []
    assert {(c.phase, c.turn) for c in calls} == {("plan", 0), ("plan", 1), ("log", 0)}
    with LmdbLog(tmp_path / "d") as log:
        steps = [r.event for r in log.read_stream(f"ep/{summary['id']}") if isinstance(r.event, StepTaken)]
    assert all(s.valid for s in steps)
