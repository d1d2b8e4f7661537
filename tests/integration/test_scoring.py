"""The rule scorer: constructed episodes whose memory decisions' worth is known, its
finality (a prefix of the log scores exactly as the whole log does), idempotence, and the
consumer against the batch command, killed at random points."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import msgspec
import pytest

from automem.engine.log import LmdbLog
from automem.engine.memory import EMPTY, apply
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.engine.scoring import (
    Params,
    final_through,
    score,
    score_episode,
    scorer_version,
)
from automem.schemas.events import (
    DecisionScored,
    EnvFacts,
    EpisodeEnded,
    EpisodeStarted,
    LLMCalled,
    MemoryOp,
    MemoryOpApplied,
    OutcomeObserved,
    StepTaken,
)
from automem.schemas.structure import DEFAULT_LIMITS

from ..support.cli import AUTOMEM

P = Params(horizon=3, gamma=0.5, read_window=10, baseline_window=100)
V = scorer_version(P)


class Step(msgspec.Struct):
    log: list[MemoryOp] = []
    plan: list[MemoryOp] = []
    log2: list[MemoryOp] = []  # a second LOG turn, which saw the first turn's results
    reward: float = 0.0
    outcomes: list[tuple[str, str, float]] = []
    inventory: dict[str, int] = {}


def episode(steps: list[Step], ended: bool = True) -> list[object]:
    """The events an agent would have logged for these steps: one answer per phase, ops in order."""
    state, events = EMPTY, [EpisodeStarted(episode="e", env="crafter", task="default", seed=0, max_steps=len(steps),
                                           structure="v0", models={"agent": "file"}, engine_version="t")]
    for n, s in enumerate(steps):
        turns = [("log", 0, s.log)] + ([("log", 1, s.log2)] if s.log2 else []) + [("plan", 0, s.plan)]
        for phase, turn, ops in turns:
            if phase == "log" and n == 0:
                continue
            events.append(LLMCalled(step=n, phase=phase, turn=turn, role="agent", model="m", prompt_digest="", response="x"))
            for i, op in enumerate(ops):
                state, r = apply(state, op)
                events.append(MemoryOpApplied(step=n, phase=phase, turn=turn, op=op, ok=r.ok, result_digest="",
                                              read_versions=r.read, written_versions=r.written, index=i))
        events.append(StepTaken(step=n, raw_action="Noop", action="Noop", valid=True, reward=s.reward, done=False,
                                observation=f"o{n}", observation_digest="", memory_digest="",
                                facts=EnvFacts(position=(n, 0), inventory=s.inventory)))
        events += [OutcomeObserved(step=n, kind=k, detail=d, value=v) for k, d, v in s.outcomes]
    if ended:
        events.append(EpisodeEnded(return_=0.0, progression=0.0, length=len(steps), cause="max_steps"))
    return events


def scores(events: list[object]) -> dict[tuple, DecisionScored]:
    return {(d.step, d.phase, d.turn, d.index): d for d in score("e", events, DEFAULT_LIMITS, P, V)}


def test_a_note_read_before_an_achievement_scores_above_a_note_nobody_reads() -> None:
    s = scores(episode([
        Step(), Step(log=[MemoryOp("append", "notes.txt", ("tree north of the lake",)),
                          MemoryOp("append", "other.txt", ("grass everywhere",))]),
        Step(plan=[MemoryOp("read", "notes.txt")], reward=1.0, outcomes=[("achievement", "collect_wood", 1.0)]),
        *[Step() for _ in range(6)],
    ]))
    read_note, unread = s[(1, "log", 0, 0)], s[(1, "log", 0, 1)]
    assert read_note.score > 0 and unread.score == 0 and unread.components == {"read_credit": 0.0}
    assert s[(2, "plan", 0, 0)].components["informed"] > 0  # the read informed the good decision
    assert s[(1, "log", 0, None)].score == pytest.approx(read_note.score)  # the answer is the sum of its commands


def test_a_contradicted_note_is_penalised() -> None:
    s = scores(episode([Step(), Step(log=[MemoryOp("append", "inv.txt", ("I have 5 wood",))]),
                        Step(plan=[MemoryOp("read", "inv.txt")]), *[Step() for _ in range(4)]]))
    note = s[(1, "log", 0, 0)]
    assert note.components["contradicted"] == -P.contradicted and note.score < 0


def test_a_read_before_a_good_decision_scores_above_one_before_damage() -> None:
    s = scores(episode([
        Step(log=[]), Step(log=[MemoryOp("append", "n.txt", ("hello",))]),
        Step(plan=[MemoryOp("read", "n.txt")], reward=1.0, outcomes=[("achievement", "collect_wood", 1.0)]),
        Step(), Step(), Step(),
        Step(plan=[MemoryOp("read", "n.txt")], outcomes=[("damage", "health 9->5", 4.0)]),
        Step(), Step(), Step(),
    ]))
    good, bad = s[(2, "plan", 0, 0)], s[(6, "plan", 0, 0)]
    assert good.score > 0 > bad.score
    assert s[(2, "plan", 0, None)].components["outcome"] == good.components["informed"]


def test_an_error_is_penalised() -> None:
    s = scores(episode([Step(), Step(log=[MemoryOp("read", "missing.txt")]), Step(), Step()]))
    assert s[(1, "log", 0, 0)].components == {"error": -P.error}


def test_a_prefix_of_the_log_scores_exactly_as_the_whole_log() -> None:
    """Finality: what a consumer scores mid-episode never changes once the episode is done."""
    rng = random.Random(7)
    steps = []
    for n in range(80):
        ops = [MemoryOp("append", f"f{rng.randrange(3)}.txt", (f"line {rng.randrange(20)}",)) for _ in range(rng.randrange(3))]
        reads = [MemoryOp(rng.choice(["read", "tail", "search"]), f"f{rng.randrange(3)}.txt",
                          (("3",) if rng.random() < 0.5 else ("line",))) for _ in range(rng.randrange(3))]
        steps.append(Step(log=ops, plan=[MemoryOp(r.kind, r.path, () if r.kind == "read" else r.args) for r in reads],
                          reward=float(rng.random() < 0.1), outcomes=[("damage", "hp", 1.0)] if rng.random() < 0.1 else []))
    full = episode(steps)
    whole = scores(full)
    assert final_through(full, P) == 79
    seen = 0
    for cut in range(20, len(full), 37):
        part = full[:cut]
        got = scores(part)
        through = final_through(part, P)
        assert all(k[0] <= through for k in got)
        assert got == {k: v for k, v in whole.items() if k[0] <= through}
        seen += len(got)
    assert seen > len(whole)  # the cuts did score decisions, most of them several times


def test_credit_through_a_log_read_is_final_in_time() -> None:
    """write A -> a LOG read of A -> a later LOG turn writes B -> a PLAN read of B before a reward: A is
    credited, and a prefix of the log scores A exactly as the whole log does (the chain is bounded)."""
    q = Params(horizon=3, gamma=0.5, read_window=10, baseline_window=100)
    steps = [Step() for _ in range(40)]
    steps[1] = Step(log=[MemoryOp("append", "a.txt", ("tree north",))])
    steps[5] = Step(log=[MemoryOp("read", "a.txt")], log2=[MemoryOp("append", "b.txt", ("go north",))])
    steps[15] = Step(plan=[MemoryOp("read", "b.txt")], reward=1.0, outcomes=[("achievement", "collect_wood", 1.0)])
    steps[16] = Step(log=[MemoryOp("read", "b.txt")], log2=[MemoryOp("append", "c.txt", ("x",))])
    full = episode(steps)
    whole = {(d.step, d.phase, d.turn, d.index): d for d in score("e", full, DEFAULT_LIMITS, q, "v")}
    assert whole[(1, "log", 0, 0)].score > 0 and whole[(5, "log", 0, 0)].components["informed"] > 0
    for cut in range(10, len(full)):
        part = {(d.step, d.phase, d.turn, d.index): d for d in score("e", full[:cut], DEFAULT_LIMITS, q, "v")}
        assert part == {k: v for k, v in whole.items() if k in part}


@pytest.mark.slow
def test_scoring_is_idempotent_and_versioned(tmp_path: Path) -> None:
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=60, seed=2, policy="random",
                               data=str(tmp_path / "d")))
    with LmdbLog(tmp_path / "d") as log:
        written, final, ended = score_episode(log, summary.id)
        assert written == final > 0 and ended
        assert score_episode(log, summary.id) == (0, final, True)  # a re-run writes nothing new
        other = Params(horizon=5)
        assert score_episode(log, summary.id, other)[0] == final  # a new version: a new set beside the old
        events = [r.event for r in log.read_stream(f"score/{summary.id}")]
        assert {e.scorer for e in events} == {scorer_version(Params()), scorer_version(other)}


@pytest.mark.slow
@pytest.mark.parametrize(("env", "task"), [("crafter", None), ("nethack", None), ("minihack", "corridor-r3")])
def test_random_episodes_of_every_game_score(tmp_path: Path, env: str, task: str | None) -> None:
    [summary] = run(RunRequest(env=env, task=task, episodes=1, max_steps=120, seed=1, policy="random",
                               data=str(tmp_path / "d")))
    with LmdbLog(tmp_path / "d") as log:
        written, final, _ = score_episode(log, summary.id)
        assert written == final > 0


def _scores_in(data: Path) -> list[bytes]:
    with LmdbLog(data, create=False) as log:
        return [msgspec.msgpack.encode(r.event) for s in log.streams("score") for r in log.read_stream(s)]


@pytest.mark.slow
def test_the_consumer_writes_what_the_batch_writes_even_when_killed(tmp_path: Path) -> None:
    batch, live = tmp_path / "batch", tmp_path / "live"
    run(RunRequest(env="crafter", task=None, episodes=3, max_steps=150, seed=5, policy="random", data=str(batch)))
    subprocess.run(["cp", "-r", str(batch), str(live)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "AUTOMEM_DATA"}
    assert subprocess.run([*AUTOMEM, "score", "--data", str(batch)], env=env, capture_output=True).returncode == 0
    rng = random.Random(3)
    for _ in range(3):  # killed at random points, then restarted
        proc = subprocess.Popen([*AUTOMEM, "consume", "scorer", "--data", str(live)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run([*AUTOMEM, "consume", "scorer", "--until-idle", "--data", str(live)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _scores_in(live) == _scores_in(batch) and _scores_in(batch)


@pytest.mark.slow
def test_show_and_report_carry_the_scores(tmp_path: Path) -> None:
    from rich.console import Console

    from automem.engine.views.report import episode_report
    from automem.engine.views.show import render, show_trace

    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=30, seed=4, policy="random",
                               data=str(tmp_path / "d")))
    with LmdbLog(tmp_path / "d") as log:
        assert show_trace(log, summary.id).scorer is None  # not scored yet: nothing shown
        score_episode(log, summary.id)
        trace = show_trace(log, summary.id)
        assert trace.scorer == scorer_version(Params())
        by_key = {(d.step, d.phase, d.turn, d.index): d.score for d in
                  (r.event for r in log.read_stream(f"score/{summary.id}"))}
        calls = [(s.step, c) for s in trace.steps for c in s.calls]
        assert calls and all(c.score == by_key[(n, c.phase, c.turn, None)] for n, c in calls)
        ops = [(s.step, o) for s in trace.steps for o in s.ops if o.phase != "init"]
        assert all(o.score == by_key[(n, o.phase, o.turn, o.index)] for n, o in ops)
        console = Console(record=True, width=200)
        render(trace, console)
        assert "[score " in console.export_text()
        page = episode_report(log, summary.id)
        assert f'"scorer":"{scorer_version(Params())}"' in page and '"score":' in page


@pytest.mark.slow
def test_a_judge_grades_a_sample_apart_from_the_rule_scores(tmp_path: Path) -> None:
    from automem.engine.scoring import episode_scores, score_episodes

    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=40, seed=6, policy="random",
                               data=str(tmp_path / "d")))
    grades = tmp_path / "grades.jsonl"
    grades.write_text("".join(f'{{"text": "GRADE: {g}"}}\n' for g in [7, 2, 10, 0, 5, 9]) + '{"text": "no idea"}\n')
    with LmdbLog(tmp_path / "d") as log:
        down = score_episodes(log, [summary.id], judge="openai:m@http://127.0.0.1:9")
        assert down.scored > 0 and down.judged == 0 and "cannot reach" in (down.judge_unavailable or "")
        report = score_episodes(log, [summary.id], judge=f"file:{grades}", judge_sample=7)
        assert report.scored == 0 and report.judged == 6 and report.ungraded == 1
        events = [r.event for r in log.read_stream(f"score/{summary.id}")]
        judged = [e for e in events if e.rule.startswith("judge:")]
        assert sorted(e.components["grade"] for e in judged) == [0, 2, 5, 7, 9, 10]
        assert {e.scorer for e in judged} == {report.judge} and report.judge != report.scorer
        assert episode_scores(log, summary.id)[0] == report.scorer  # the rule scores stay the rule scores
        again = score_episodes(log, [summary.id], judge=f"file:{grades}", judge_sample=7)
        assert again.judged == 1 and again.ungraded == 0  # only the ungraded one is asked again


@pytest.mark.slow
def test_local_model_episodes_of_every_game_score(tmp_path: Path, converted_model: Path) -> None:
    """The embedded model (auto's small structure, answer prefixes) on each game: scores for its decisions, no errors."""
    from automem.engine.scoring import score_episodes

    ids = [run(RunRequest(env=env, task=task, episodes=1, max_steps=2, seed=0, policy="local",
                          data=str(tmp_path / "d")))[0].id
           for env, task in (("crafter", None), ("nethack", None), ("minihack", "corridor-r3"))]
    with LmdbLog(tmp_path / "d") as log:
        report = score_episodes(log, ids)
        assert report.episodes == 3 and not report.skipped and report.scored == report.decisions > 0
        from automem.engine.dataset.build import build_dataset
        from automem.engine.dataset.select import Selection

        built = build_dataset(log, tmp_path / "d", Selection(min_score=0.0, balance=False))  # and they build
        assert built.examples > 0 and set(built.counts["env"]) == {"crafter", "nethack", "minihack"}


def test_a_fact_lost_is_penalised_once_however_often_the_file_is_read() -> None:
    s = scores(episode([
        Step(inventory={"wood": 5}), Step(log=[MemoryOp("append", "inv.txt", ("I have 5 wood",))], inventory={"wood": 5}),
        Step(log=[MemoryOp("write", "inv.txt", ("nothing here\n",))], inventory={"wood": 5}),
        *[Step(plan=[MemoryOp("read", "inv.txt")], inventory={"wood": 5}) for _ in range(3)], *[Step() for _ in range(4)],
    ]))
    assert s[(2, "log", 0, 0)].components.get("lost") == -P.lost
