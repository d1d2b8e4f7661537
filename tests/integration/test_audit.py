"""The first-mistake audit: planted memory faults found exactly, clean episodes cleared, forks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from automem.engine.audit import audit
from automem.engine.audit.claims import check, extract
from automem.engine.audit.counterfactual import fork
from automem.engine.audit.failure import Rules, detect
from automem.engine.episodes.replay import replay
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.policy.spec import make_policy
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.events import (
    EnvFacts,
    EpisodeStarted,
    OpRef,
    OutcomeObserved,
    StepTaken,
)

# Crafter seed 0 starts at (32, 32) on grass, trees "3 north, 4 west" and "3 south, 4 east",
# no wood. Standing still (Noop, or crafting without materials) changes nothing the
# repeated-scene rule looks at, so 10 such steps in a row are a failure.
STUCK = ["<|DONE|>", "<|READ|>crafting_progress.txt<|END|>", "<|ACTION|>Make Wood Pickaxe<|END|>"]


def scripted(tmp_path: Path, answers: list[str], steps: int, name: str = "r") -> tuple[LmdbLog, str]:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in answers))
    data = tmp_path / "d"
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=steps, seed=0,
                               policy=f"file:{path}", structure="v0", data=str(data)))
    assert summary.status == "ended", summary
    return LmdbLog(data), summary.id


def planted(tmp_path: Path) -> tuple[LmdbLog, str]:
    """A false claim written at step 1 ("I have 5 wood"), read before every later decision."""
    answers = ["<|ACTION|>Noop<|END|>",
               "<|APPEND|>crafting_progress.txt|collected 2 saplings<|END|>"
               "<|APPEND|>crafting_progress.txt|I have 5 wood<|END|><|DONE|>",
               "<|ACTION|>Noop<|END|>"] + STUCK * 12
    return scripted(tmp_path, answers, 14)


@pytest.mark.slow
def test_planted_false_write_is_the_first_mistake(tmp_path: Path) -> None:
    log, ep = planted(tmp_path)
    result = audit(log, ep)
    assert result.failure is not None and result.failure.rule == "repeated_observation"
    m = result.first_mistake
    assert m is not None
    assert (m.step, m.phase, m.turn, m.index, m.op, m.file, m.content, m.kind) == (
        1, "log", 0, 1, "append", "crafting_progress.txt", "I have 5 wood", "contradicted")
    assert "wood: 0" in m.evidence
    kinds = [link.kind for link in result.chain]
    assert kinds[0] == "write" and kinds[-1] == "failure" and "read" in kinds and "decision" in kinds
    assert result.chain[0].step == 1 and result.chain[-1].step == result.failure.step
    # every link of the chain points at a step that exists
    assert all(0 <= link.step <= 13 for link in result.chain)
    # naming the failure instead: the same write is found
    named = audit(log, ep, failure_step=5)
    assert named.failure is not None and named.failure.rule == "named"
    assert named.first_mistake == m
    log.close()


@pytest.mark.slow
def test_true_writes_are_not_a_memory_failure(tmp_path: Path) -> None:
    answers = ["<|ACTION|>Noop<|END|>",
               "<|APPEND|>crafting_progress.txt|I have 0 wood, health 9<|END|><|DONE|>",
               "<|ACTION|>Noop<|END|>"] + STUCK * 12
    log, ep = scripted(tmp_path, answers, 14)
    result = audit(log, ep)
    assert result.failure is not None and result.failure.rule == "repeated_observation"
    assert result.first_mistake is None and "agree with the recorded env facts" in result.reason
    log.close()


@pytest.mark.slow
def test_decisions_without_reads_are_not_a_memory_failure(tmp_path: Path) -> None:
    answers = ["<|ACTION|>Noop<|END|>"] + ["<|APPEND|>strategy.txt|I have 7 diamonds<|END|><|DONE|>",
                                           "<|ACTION|>Noop<|END|>"] * 13
    log, ep = scripted(tmp_path, answers, 14)
    result = audit(log, ep)
    assert result.failure is not None and result.first_mistake is None
    assert "shown no memory content" in result.reason
    assert [link.kind for link in result.chain][-1] == "failure"
    log.close()


def test_stale_relative_position(tmp_path: Path) -> None:
    """True when written, false after the agent moved; read later without an update."""
    answers = ["<|ACTION|>Noop<|END|>",
               "<|APPEND|>map_notes.txt|tree 3 north, 4 west<|END|><|DONE|>", "<|ACTION|>Move East<|END|>",
               "<|DONE|>", "<|ACTION|>Move East<|END|>"] + [
        "<|DONE|>", "<|READ|>map_notes.txt<|END|>", "<|ACTION|>Noop<|END|>"] * 12
    log, ep = scripted(tmp_path, answers, 15)
    result = audit(log, ep)
    m = result.first_mistake
    assert m is not None and (m.step, m.kind, m.content) == (1, "stale", "tree 3 north, 4 west")
    log.close()


@pytest.mark.slow
def test_lost_fact(tmp_path: Path) -> None:
    """A true line overwritten while still true, then the file is read."""
    answers = ["<|ACTION|>Noop<|END|>",
               "<|APPEND|>crafting_progress.txt|health 9<|END|><|DONE|>", "<|ACTION|>Noop<|END|>",
               "<|WRITE|>crafting_progress.txt|nothing made yet<|END|><|DONE|>", "<|ACTION|>Noop<|END|>"] + STUCK * 12
    log, ep = scripted(tmp_path, answers, 15)
    result = audit(log, ep)
    m = result.first_mistake
    assert m is not None and (m.step, m.op, m.kind) == (2, "write", "lost")
    assert result.chain[0].kind == "write" and result.chain[1].kind == "read"
    log.close()


@pytest.mark.slow
def test_duplicate_that_crowds_out_the_file(tmp_path: Path) -> None:
    line = "remember: " + "grass everywhere " * 60  # ~1 KB, no checkable claim
    answers = ["<|ACTION|>Noop<|END|>"] + [f"<|APPEND|>actions_log.txt|{line}<|END|><|DONE|>",
                                           "<|ACTION|>Noop<|END|>"] * 5 + [
        "<|DONE|>", "<|READ|>actions_log.txt<|END|>", "<|ACTION|>Noop<|END|>"] * 10
    log, ep = scripted(tmp_path, answers, 16)
    result = audit(log, ep)
    m = result.first_mistake
    assert m is not None and (m.step, m.kind) == (2, "duplicate")  # the first repeat, not the original
    log.close()


@pytest.mark.slow
def test_counterfactual_fork(tmp_path: Path) -> None:
    log, ep = planted(tmp_path)
    head = log.head(f"ep/{ep}")
    result = audit(log, ep)
    # a live policy that walks away: without the false write, the agent is not stuck
    walker = tmp_path / "walk.jsonl"
    walker.write_text("".join(json.dumps({"text": t}) + "\n" for t in
                              ["<|ACTION|>Noop<|END|>"] + ["<|DONE|>", "<|ACTION|>Move South<|END|>",
                                                           "<|DONE|>", "<|ACTION|>Move West<|END|>"] * 10))
    cf = fork(log, result, make_policy(f"file:{walker}"), horizon=12)
    assert (cf.parent, cf.fork_step, cf.steps) == (ep, 1, 13) and cf.failure_recurs is False
    start = next(iter(log.read_stream(f"ep/{cf.episode}"))).event
    assert isinstance(start, EpisodeStarted) and (start.parent, start.fork_step) == (ep, 1)
    assert start.dropped == (OpRef(1, "log", 0, 1),)
    # the fork is an episode like any other: it replays exactly; the parent is untouched
    fork_replay = replay(log, cf.episode)
    assert fork_replay.divergence is None and fork_replay.verified == fork_replay.steps == 13
    assert log.head(f"ep/{ep}") == head
    again = fork(log, result, make_policy(f"file:{tmp_path / 'r.jsonl'}"), horizon=12)  # the original answers
    assert again.episode != cf.episode and again.failure_recurs is True
    log.close()


def _step(n: int, valid: bool = True, inventory: dict[str, int] | None = None, action: str = "Noop",
          position: tuple[int, int] = (1, 1)) -> StepTaken:
    return StepTaken(step=n, raw_action=action, action=action, valid=valid, reward=0.0, done=False,
                     observation="", observation_digest="", memory_digest="",
                     facts=EnvFacts(position=position, inventory=inventory or {}))


def test_failure_rules() -> None:
    moving = [_step(i, position=(i, 0)) for i in range(30)]
    assert detect(moving, []) is None
    death = detect(moving, [OutcomeObserved(step=7, kind="death", detail="zombie")])
    assert death is not None and (death.failure.step, death.failure.rule, death.steps) == (7, "death", (3, 4, 5, 6, 7))
    invalid = [_step(i, position=(i, 0), valid=not 4 <= i < 9) for i in range(20)]
    found = detect(invalid, [])
    assert found is not None and (found.failure.rule, found.failure.step) == ("invalid_actions", 8)
    lost = [_step(0, inventory={"wood": 2}), _step(1, inventory={"wood": 2}, position=(2, 2)),
            _step(2, inventory={}, action="Move West", position=(3, 3))]
    found = detect(lost, [])
    assert found is not None and (found.failure.rule, found.failure.step) == ("resource_lost", 2)
    used = [_step(0, inventory={"wood": 2}), _step(1, inventory={}, action="Place Table", position=(2, 2))]
    assert detect(used, []) is None
    idle = detect(moving, [], Rules(idle_run=20))
    assert idle is not None and (idle.failure.rule, idle.failure.step) == ("unproductive_streak", 19)
    # going up a staircase or losing a level is no progress: only gains break the streak
    lost_levels = [OutcomeObserved(step=5, kind="level", detail="depth 3->2", value=-1.0),
                   OutcomeObserved(step=9, kind="level", detail="experience level 4->3", value=-1.0)]
    assert detect(moving, lost_levels, Rules(idle_run=20)) == idle
    gained = [OutcomeObserved(step=15, kind="level", detail="depth 2->3", value=1.0)]
    assert detect(moving, gained, Rules(idle_run=20)) is None


def test_nethack_level_outcomes_carry_the_change() -> None:
    from automem.engine.envs.nle_base import NLETextEnv
    from automem.engine.envs.nle_text import BL_DEPTH, BL_XP, Frame

    def frame(depth: int, xl: int) -> Frame:
        blstats = np.zeros(27, dtype=np.int64)
        blstats[BL_DEPTH], blstats[BL_XP], blstats[10] = depth, xl, 10  # 10: HP, unchanged
        return Frame(*(np.zeros(1),) * 4, blstats, *(np.zeros(1),) * 4)

    changes = NLETextEnv._changes(frame(3, 2), frame(2, 4))
    assert [(k, d, v) for k, d, v in changes] == [("level", "depth 3->2", -1.0), ("level", "experience level 2->4", 2.0)]


@pytest.mark.parametrize("text,expected", [
    ("I have 5 wood", [("count", "wood", "5")]),
    ("Inventory: wood 3, stone 2", [("count", "wood", "3"), ("count", "stone", "2")]),
    ("step 3: Do -> collected 1 wood", [("achievement", "collect_wood", "done")]),
    ("need to make wood pickaxe", []),
    ("plan: wood -> table -> wood pickaxe", []),
    ("water 2 north, 1 east", [("place", "water", "2 north, 1 east")]),
    ("Health 9/9, food 3", [("vital", "health", "9"), ("vital", "food", "3")]),
    ("dlvl 2, XL 3", [("depth", "depth", "2"), ("level", "level", "3")]),
    ("# where resources and places are (x,y)", []),
    ("\x00\x01 <|END|> ../../etc/passwd 🙂", []),
    ("sleep when energy is 3 or less", []),
    ("wood pickaxe requires wood: 1", []),
    ("got 2 wood from the tree", []),
    ("food 3 north", []),
    ("Dlvl:1 $:0 HP:14(14)", [("vital", "hp", "14"), ("depth", "depth", "1")]),
])
def test_claims_extracted(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(c.kind, c.subject, c.value) for c in extract(text)] == expected


def test_claims_checked_against_facts() -> None:
    view = (".........", ".........", "........T", "....~...T", "........T", ".........", ".........")
    facts = EnvFacts(health=7.0, inventory={"wood": 2}, achievements=("collect_wood",), view=view,
                     extra={"food": "4"})
    verdicts = {c.text: check(c, facts).holds for c in extract(
        "I have 2 wood\nI have 3 wood\nhealth 7\nfood 5\nwater here 0 north\ntree 1 north, 4 east\n"
        "water 3 west\ncollected wood\nmade wood pickaxe\ndlvl 3")}
    assert verdicts == {"I have 2 wood": True, "I have 3 wood": False, "health 7": True, "food 5": False,
                        "tree 1 north, 4 east": True, "water 3 west": False, "collected wood": True,
                        "made wood pickaxe": False, "dlvl 3": None}


def automem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from automem.engine.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_audit_cli(tmp_path: Path) -> None:
    log, ep = planted(tmp_path)
    log.close()
    data = str(tmp_path / "d")
    out = automem("audit", ep, "--data", data, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) >= {"episode", "failure", "first_mistake", "chain"}
    assert doc["first_mistake"]["content"] == "I have 5 wood"
    human = automem("audit", ep, "--data", data, cwd=tmp_path)
    assert human.returncode == 0 and "first mistake: step 1" in human.stdout and "evidence chain" in human.stdout
    for args, words in [((ep, "--failure", "99"), "out of range"), (("nope",), "unknown episode"),
                        ((ep, "--counterfactual"), "--policy"), ((ep, "--policy", "random"), "--counterfactual"),
                        ((ep, "--data", str(tmp_path / "missing")), "")]:
        bad = automem("audit", *args, *(() if "--data" in args else ("--data", data)), cwd=tmp_path)
        assert bad.returncode == 2, (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1 and words in bad.stderr
    cf = automem("audit", ep, "--data", data, "--counterfactual", "--policy", "random", "--horizon", "4", "--json",
                 cwd=tmp_path)
    assert cf.returncode == 0, cf.stderr
    fork_doc = json.loads(cf.stdout)["counterfactual"]
    assert fork_doc["parent"] == ep and fork_doc["fork_step"] == 1 and fork_doc["steps"] == 5


@pytest.mark.slow
@pytest.mark.parametrize("env,task", [("crafter", None), ("nethack", None), ("minihack", None)])
def test_audit_any_random_episode(tmp_path: Path, env: str, task: str | None) -> None:
    """Random agents read and write plenty: the audit of any step of any game gives an answer."""
    data = tmp_path / "d"
    [summary] = run(RunRequest(env=env, task=task, episodes=1, max_steps=25, seed=1, policy="random", data=str(data)))
    with LmdbLog(data) as log:
        for step in (0, summary.steps // 2, summary.steps - 1):
            result = audit(log, summary.id, failure_step=step)
            assert result.failure is not None and result.chain[-1].kind == "failure"
            assert (result.first_mistake is None) == bool(result.reason.endswith("not a memory failure"))
            if result.first_mistake is not None:
                assert result.chain[0].kind == "write" and result.chain[0].step == result.first_mistake.step


def _lines(path: Path, answers: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in answers))
    return path


@pytest.mark.slow
def test_counterfactual_of_a_two_model_episode(tmp_path: Path) -> None:
    """The memory model wrote the false line; the fork must replay both roles' answers up to it."""
    memory = ["<|ACTION|>Noop<|END|>",
              "<|APPEND|>crafting_progress.txt|I have 5 wood<|END|><|DONE|>",
              "<|READ|>crafting_progress.txt<|END|>", "<|ACTION|>Noop<|END|>"] + [
        "<|DONE|>", "<|READ|>crafting_progress.txt<|END|>", "<|ACTION|>Noop<|END|>"] * 12
    agent = ["<|ACTION|>Noop<|END|>"] + ["<|ACTION|>Make Wood Pickaxe<|END|>"] * 13
    data = tmp_path / "d"
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=14, seed=0,
                               policy=f"file:{_lines(tmp_path / 'a.jsonl', agent)}",
                               memory_policy=f"file:{_lines(tmp_path / 'm.jsonl', memory)}",
                               structure="v0", data=str(data)))
    with LmdbLog(data) as log:
        result = audit(log, summary.id)
        m = result.first_mistake
        assert m is not None and (m.step, m.phase, m.turn, m.index, m.content) == (1, "log", 0, 0, "I have 5 wood")
        walker = _lines(tmp_path / "w.jsonl", ["<|ACTION|>Move South<|END|>", "<|DONE|>"] * 40)
        cf = fork(log, result, make_policy(f"file:{walker}"), horizon=12)
        events = [r.event for r in log.read_stream(f"ep/{cf.episode}")]
        writes = [e.op.args for e in events if getattr(e, "op", None) is not None and e.op.kind == "append"]
        assert ("I have 5 wood",) not in writes
        assert replay(log, cf.episode).divergence is None


@pytest.mark.slow
def test_a_fork_of_a_fork_keeps_the_first_drop(tmp_path: Path) -> None:
    answers = ["<|ACTION|>Noop<|END|>",
               "<|APPEND|>crafting_progress.txt|I have 5 wood<|END|>"
               "<|APPEND|>crafting_progress.txt|I have 7 stone<|END|><|DONE|>",
               "<|ACTION|>Noop<|END|>"] + STUCK * 12
    log, ep = scripted(tmp_path, answers, 14)
    first = audit(log, ep)
    assert first.first_mistake is not None and first.first_mistake.index == 0
    cf1 = fork(log, first, make_policy(f"file:{tmp_path / 'r.jsonl'}"), horizon=12)  # the parent's own answers
    second = audit(log, cf1.episode)
    m = second.first_mistake
    assert m is not None and (m.content, m.index) == ("I have 7 stone", 1)  # its place in the answer, drops counted
    cf2 = fork(log, second, make_policy("random"), horizon=3)
    start = next(iter(log.read_stream(f"ep/{cf2.episode}"))).event
    assert start.dropped == (OpRef(1, "log", 0, 0), OpRef(1, "log", 0, 1))
    assert replay(log, cf2.episode).divergence is None
    # three steps past the write end before the parent's failure step: no verdict
    assert cf2.failure_recurs is None and "longer --horizon" in cf2.detail
    log.close()


def test_nethack_item_renames_are_not_losses() -> None:
    worn = {"c - uncursed +1 leather armor (being worn)": 1, "d - 2 food rations": 2}
    off = {"c - uncursed +1 leather armor": 1, "d - 2 food rations": 2}
    steps = [_step(0, inventory=worn), _step(1, inventory=off, action="more", position=(2, 2))]
    assert detect(steps, []) is None
    dropped = [_step(0, inventory=off), _step(1, inventory=off, action="drop", position=(2, 2)),
               _step(2, inventory={"d - 2 food rations": 2}, action="more", position=(3, 3))]
    assert detect(dropped, []) is None  # "more" continues the drop
    stolen = [_step(0, inventory=off), _step(1, inventory={"d - 2 food rations": 2}, action="west", position=(2, 2))]
    found = detect(stolen, [])
    assert found is not None and found.failure.rule == "resource_lost" and "leather armor" in found.failure.detail


@pytest.mark.slow
def test_a_dated_claim_is_judged_by_the_world_its_writer_saw(tmp_path: Path) -> None:
    """"step 1: ..." written at step 1 speaks of the world the prompt called step 1 (after step 0),
    not of the world after the agent walked away."""
    answers = ["<|ACTION|>Noop<|END|>",
               "<|APPEND|>map_notes.txt|step 1: tree 3 north, 4 west<|END|><|DONE|>", "<|ACTION|>Move East<|END|>",
               "<|APPEND|>map_notes.txt|step 2: water 1 north<|END|><|DONE|>", "<|ACTION|>Noop<|END|>"] + [
        "<|DONE|>", "<|READ|>map_notes.txt<|END|>", "<|ACTION|>Noop<|END|>"] * 12
    log, ep = scripted(tmp_path, answers, 15)
    m = audit(log, ep).first_mistake
    assert m is not None and (m.step, m.content, m.kind) == (2, "step 2: water 1 north", "contradicted")
    log.close()
