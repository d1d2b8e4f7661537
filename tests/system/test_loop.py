"""`automem loop`: the planner, a whole iteration of both loops recorded stage by stage, a
second start that does nothing new, conflicting settings refused, and SIGKILL at a random
stage then a restart giving what an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from automem.engine.log import LmdbLog
from automem.engine.loop import Settings, loop_id, next_step, run_loop, stages, status
from automem.engine.loop.plan import conflicts
from automem.engine.loop.records import (
    Dataset,
    Evaluated,
    Heldout,
    Interval,
    Loop1,
    Paired,
    Proposal,
    Rollouts,
    Scores,
    Trained,
    decode,
    encode,
)
from automem.engine.policy.spec import make_policy
from automem.schemas.errors import UserError
from automem.schemas.events import (
    EpisodeEnded,
    LoopIterationFinished,
    LoopIterationStarted,
    LoopStageDone,
    LoopStageStarted,
    LoopStarted,
    ModelVersionCreated,
    StructureAccepted,
    StructureProposed,
    StructureRejected,
)

from ..support.loop import FAST, LOOP, _args, _reviewer

# The same command, SIGKILLed by itself right after the loop's $KILL_AT-th event is written:
# a real kill at an exact point, with no race against a watcher polling the store.
DYING = [sys.executable, "-c", "import os, signal\n"
         "from automem.engine.loop import drive\n"
         "append, written = drive._Driver.append, [0]\n"
         "def dying(self, event):\n"
         "    append(self, event)\n"
         "    written[0] += 1\n"
         "    if written[0] == int(os.environ['KILL_AT']):\n"
         "        os.kill(os.getpid(), signal.SIGKILL)\n"
         "drive._Driver.append = dying\n"
         "from automem.engine.cli import main; main()\n", "loop"]






def _loop_events(data: Path) -> list[object]:
    with LmdbLog(data, create=False) as log:
        return [r.event for s in log.streams("loop") for r in log.read_stream(s)]


def _derived(data: Path) -> dict[str, object]:
    """What a loop produced, random episode ids aside."""
    with LmdbLog(data, create=False) as log:
        done = [(e.iteration, e.stage, len(e.episodes), e.outputs, e.figures)
                for s in log.streams("loop") for r in log.read_stream(s) if isinstance(e := r.event, LoopStageDone)]
        decisions = [(type(r.event).__name__, r.event.version) for r in log.read_stream("structure/crafter")
                     if isinstance(r.event, (StructureAccepted, StructureRejected))]
        proposed = sorted(r.event.version for r in log.read_stream("structure/crafter")
                          if isinstance(r.event, StructureProposed))
        ended = sum(1 for s in log.streams("ep") if isinstance(list(log.read_stream(s))[-1].event, EpisodeEnded))
    return {"done": done, "decisions": decisions, "proposed": proposed, "ended_episodes": ended}


# ----------------------------------------------------------------------------- pure parts


def test_the_planner_walks_the_stages_and_ids_follow_the_settings() -> None:
    s = Settings(env="crafter", task="default", train_seeds=(1,), select_seeds=(2,), heldout_seeds=(3,), max_steps=5,
                 reviewer="random")
    events: list[object] = [LoopStarted(loop="x", settings=s.flat())]
    seen = []
    while (step := next_step(events, 2)) is not None:
        seen.append((step.iteration, step.stage))
        if step.stage == "start":
            events.append(LoopIterationStarted(iteration=step.iteration, structure="v"))
        elif step.stage == "finish":
            events.append(LoopIterationFinished(iteration=step.iteration, structure="v"))
        else:
            assert step.marks is None
            events += [LoopStageStarted(iteration=step.iteration, stage=step.stage, marks={"structure": 7}),
                       LoopStageDone(iteration=step.iteration, stage=step.stage)]
        assert len(seen) < 50
    body = ["rollouts", "scores", "loop1", "dataset", "train", "evaluate", "report"]
    assert seen == [(i, st) for i in (1, 2) for st in ["start", *(["baseline"] if i == 1 else []), *body, "finish"]]
    assert stages((2,), 2) == ("rollouts", "scores", "dataset", "train", "evaluate", "report")
    assert stages((2,), 1) == ("baseline", *stages((2,), 2))
    # a stage begun but not done comes back with its marks
    cut = events[:6] + [LoopStageStarted(iteration=1, stage="scores", marks={"structure": 3})]
    assert next_step(cut, 1) == next_step(cut, 1) and next_step(cut, 1).marks == {"structure": 3}  # type: ignore[union-attr]
    assert loop_id(s) == loop_id(msgspec.structs.replace(s)) != loop_id(msgspec.structs.replace(s, max_steps=6))
    assert conflicts(s.flat(), msgspec.structs.replace(s, select_seeds=(2, 4)).flat()) == [
        "select_seeds: stored '2', now '2,4'"]
    with pytest.raises(UserError, match="training and selection seeds overlap"):
        msgspec.structs.replace(s, select_seeds=(1,)).check()
    with pytest.raises(UserError, match="needs a reviewer"):
        msgspec.structs.replace(s, reviewer="").check()


def test_each_record_round_trips_through_its_event_and_a_0_4_0_event_decodes() -> None:
    paired = Paired(0.5, 0.25, Interval(0.25, -0.1, 0.6))
    heldout = Heldout(structure="s", model="", episodes=("e1", "e2"), progression=Interval(0.2, 0.1, 0.3),
                      figures={"command_error_rate": Interval(0.4, 0.3, 0.5)})
    records = {"baseline": heldout, "report": heldout,
               "rollouts": Rollouts(structure="s", model="m", episodes=("e",), reused=1, mean_progression=0.5),
               "scores": Scores(episodes=("e",), scorer="rules-2", decisions=7),
               "loop1": Loop1(structure="s", candidate="", parent="s", accepted=False,
                              proposal=Proposal(False, "no proposal"), select=paired),
               "dataset": Dataset(dataset="d", sha256="x", scorer="rules-2", examples=3, episodes=2),
               "train": Trained(model_version="mem-1", dataset="d", new=False, loss=1.5, steps=2, tokens=30),
               "evaluate": Evaluated(candidate="mem-1", incumbent="", promoted=True, model="mem-1", decision="won",
                                     select=paired)}
    for stage, record in records.items():
        event = encode(3, stage, record)
        assert decode(msgspec.json.decode(msgspec.json.encode(event), type=LoopStageDone)) == record, stage
    assert encode(1, "loop1", records["loop1"]).outputs["valid"] == "false"
    old = LoopStageDone(iteration=1, stage="report", outputs={"structure": "s", "model": ""},  # before per-figure intervals
                        figures={"heldout.mean_progression": 0.2, "heldout.low": 0.1, "heldout.high": 0.3,
                                 "heldout.command_error_rate": 0.4})
    assert decode(old) == Heldout(structure="s", model="", episodes=(), progression=Interval(0.2, 0.1, 0.3),
                                  figures={"command_error_rate": 0.4})
    assert encode(1, "report", decode(old)) == old


def test_a_comparison_arm_is_a_stage_of_iteration_one_and_old_loops_keep_their_ids() -> None:
    s = Settings(env="crafter", task="default", train_seeds=(1,), select_seeds=(2,), heldout_seeds=(3,), max_steps=5,
                 loops=(2,))
    assert "compare" not in s.flat()  # a loop started before the arm existed keeps its id
    armed = msgspec.structs.replace(s, compare="history-16").check()
    assert armed.flat()["compare"] == "history-16" and loop_id(armed) != loop_id(s)
    assert stages((2,), 1, compare=True)[:2] == ("baseline", "compare") and "compare" not in stages((2,), 2, True)
    for bad, needle in (("memory", "agent without memory"), ("history-x", "bad agent"), ("react", "unknown agent"),
                        ("none:ascii", "unknown observation format"), ("history", "write it history-16")):
        with pytest.raises(UserError, match=needle):
            msgspec.structs.replace(s, compare=bad).check()
    assert msgspec.structs.replace(s, env="minihack", compare="none:balrog").check().compare == "none:balrog"
    arm = Heldout(structure="s", model="", episodes=("e",), progression=Interval(0.1, 0.0, 0.2), agent="none")
    event = encode(1, "compare", arm)
    assert event.outputs["agent"] == "none" and decode(event) == arm


@pytest.mark.slow
def test_the_comparison_arm_plays_the_heldout_seeds_without_memory(tmp_path: Path) -> None:
    data, reviewer = tmp_path / "d", _reviewer(tmp_path / "reviewer.jsonl")
    done = subprocess.run([*LOOP, *_args(data, reviewer, "--compare", "history-2")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ran"][:3] == ["1:start", "1:baseline", "1:compare"]
    [row] = doc["iterations"]
    assert row["compare_agent"] == "history-2" and set(row["compare"]) == {
        "heldout.mean_progression", "heldout.low", "heldout.high"}  # memory figures do not apply: absent, not 0
    with LmdbLog(data, create=False) as log:
        arm = next(decode(e) for e in _loop_events(data) if isinstance(e, LoopStageDone) and e.stage == "compare")
        starts = [next(iter(log.read_stream(f"ep/{ep}"))).event for ep in arm.episodes]
    assert len(starts) == 3 and all(st.agent.kind == "history" and st.seed in (3000, 3001, 3002) for st in starts)
    table = subprocess.run([*LOOP, "status", "--data", str(data)], capture_output=True, text=True, timeout=60)
    assert "compare: history-2" in table.stdout
    page = subprocess.run([*LOOP, "report", "--data", str(data), "--output", str(tmp_path / "loop.html"),
                           ], capture_output=True, text=True, timeout=120)
    assert page.returncode == 0, page.stderr
    assert "history-2 (no memory), the same seeds" in (tmp_path / "loop.html").read_text()


# ------------------------------------------------------------------------------ loop 1


@pytest.mark.slow
def test_a_loop1_iteration_records_every_stage_and_a_second_start_does_nothing(tmp_path: Path) -> None:
    data, reviewer = tmp_path / "d", _reviewer(tmp_path / "reviewer.jsonl")
    first = subprocess.run([*LOOP, *_args(data, reviewer)], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["ran"] == ["1:start", "1:baseline", "1:rollouts", "1:scores", "1:loop1", "1:report", "1:finish"]
    [row] = doc["iterations"]
    assert row["status"] == "finished" and row["accepted"] in (True, False) and row["candidate_structure"]
    assert {"select.candidate", "select.parent", "select.low", "select.high", "heldout.candidate"} <= set(row["loop1"])
    assert {"heldout.mean_progression", "heldout.low", "heldout.high"} <= set(row["heldout"])
    figure = next(k for k in row["heldout"] if k.startswith("heldout.") and k.count(".") == 1
                  and k not in ("heldout.mean_progression", "heldout.low", "heldout.high"))
    assert row["heldout"][f"{figure}.low"] <= row["heldout"][figure] <= row["heldout"][f"{figure}.high"]
    before = _derived(data)
    assert before["ended_episodes"] == 3 + 2 * 3 + 2 * 3  # training, then candidate and parent on selection and held-out
    again = subprocess.run([*LOOP, *_args(data, reviewer)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["ran"] == [], again.stderr
    assert "nothing to do" in again.stderr
    assert _derived(data) == before  # no new episode, structure, decision or stage
    shown = subprocess.run([*LOOP, "status", "--data", str(data), "--json"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["iterations"] == doc["iterations"]
    table = subprocess.run([*LOOP, "status", "--data", str(data)], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "finished" in table.stdout and "held-out" in table.stdout


@pytest.mark.slow
def test_conflicting_settings_under_one_id_exit_2_naming_them(tmp_path: Path) -> None:
    data, reviewer = tmp_path / "d", _reviewer(tmp_path / "reviewer.jsonl")
    base = _args(data, reviewer, "--id", "mine", "--episodes", "1", "--max-steps", "3")
    assert subprocess.run([*LOOP, *base], capture_output=True, text=True, timeout=300).returncode == 0
    for change, name in ((["--env", "nethack"], "env"), (["--select-seeds", "2000-2004"], "select_seeds"),
                         (["--loops", "1,2"], "loops")):
        proc = subprocess.run([*LOOP, *base, *change], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert "Traceback" not in proc.stderr and f"{name}: stored" in lines[-1] and "loop mine" in lines[-1], proc.stderr
    overlap = subprocess.run([*LOOP, *_args(data, reviewer, "--select-seeds", "1000-1001")], capture_output=True,
                             text=True, timeout=60)
    assert overlap.returncode == 2 and "training and selection seeds overlap" in overlap.stderr
    with LmdbLog(data, create=False) as log:
        assert status(log, "mine").settings["env"] == "crafter"


@pytest.mark.slow
def test_an_invalid_proposal_is_recorded_and_shown_not_hidden(tmp_path: Path) -> None:
    data, reviewer = tmp_path / "d", tmp_path / "reviewer.jsonl"
    reviewer.write_text((json.dumps({"text": "I would keep it as it is."}) + "\n") * 6)  # a small model's usual answer
    args = _args(data, f"file:{reviewer}", "--episodes", "1", "--max-steps", "3")
    proc = subprocess.run([*LOOP, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)["iterations"]
    assert (row["proposal"], row["accepted"]) == ("invalid", False) and row["structure"].startswith("crafter-v0-small")
    assert row["decision"] == "the reviewer made no proposal in 6 turns"
    table = subprocess.run([*LOOP, "status", "--data", str(data)], capture_output=True, text=True, timeout=60)
    assert "invalid proposal" in table.stdout


@pytest.mark.slow
def test_a_failing_stage_is_one_line_and_the_next_start_resumes_there(tmp_path: Path) -> None:
    data, reviewer = tmp_path / "d", "openai:m@http://127.0.0.1:9"  # a reviewer that cannot be reached
    args = [*_args(data, reviewer, "--id", "down", "--episodes", "1", "--max-steps", "3")]
    proc = subprocess.run([*LOOP, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "stage loop1 of iteration 1 failed" in proc.stderr.strip().splitlines()[-1]
    with LmdbLog(data, create=False) as log:
        [row] = status(log, "down").iterations
        assert row.status == "failed at loop1" and row.stages == ["baseline", "rollouts", "scores"]
    again = subprocess.run([*LOOP, *args], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "rollouts..." not in again.stderr and "loop1..." in again.stderr


@pytest.mark.slow
def test_sigkill_at_a_random_stage_then_restart_gives_the_uninterrupted_results(tmp_path: Path) -> None:
    reviewer = _reviewer(tmp_path / "reviewer.jsonl")
    whole = tmp_path / "whole"
    assert subprocess.run([*LOOP, *_args(whole, reviewer)], capture_output=True, timeout=300).returncode == 0
    total = len(_loop_events(whole))
    k = random.Random().randrange(2, total - 1)  # LoopStarted and the first iteration's start written, not finished
    killed = tmp_path / "killed"
    child = subprocess.run([*DYING, *_args(killed, reviewer)], capture_output=True, timeout=300,
                           env={**os.environ, "KILL_AT": str(k)})
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    reached = len(_loop_events(killed))
    assert k <= reached < total, (k, reached, total)
    again = subprocess.run([*LOOP, *_args(killed, reviewer)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    got, want = _derived(killed), _derived(whole)
    assert got["done"] == want["done"], f"killed after event {reached} of {total}"
    assert got["decisions"] == want["decisions"] and got["proposed"] == want["proposed"]
    assert got["ended_episodes"] == want["ended_episodes"]  # nothing finished was played again
    assert sum(isinstance(e, LoopIterationFinished) for e in _loop_events(killed)) == 1


class Crash(BaseException):
    """A kill between a stage's own writes and its LoopStageDone (the window SIGKILL rarely hits)."""


def _crash_before_done(monkeypatch: pytest.MonkeyPatch, stages_: set[str]) -> None:
    from automem.engine.loop import drive

    original = drive._Driver.append
    left = set(stages_)

    def append(self: drive._Driver, event: object) -> None:
        if isinstance(event, LoopStageDone) and event.stage in left:
            left.discard(event.stage)
            raise Crash(event.stage)
        original(self, event)

    monkeypatch.setattr(drive._Driver, "append", append)


def _settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(env="crafter", task="default", train_seeds=(1000, 1001), select_seeds=(2000, 2001),
                    heldout_seeds=(3000,), max_steps=10, loops=(1,), policy="random", structure="v0-small",
                    reviewer=_reviewer(tmp_path / "reviewer.jsonl"), **changes)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_kill_after_loop1_decided_takes_the_decision_from_the_log(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    with LmdbLog(whole) as log:
        run_loop(log, whole, log, settings, "l", 1, lambda: make_policy(settings.reviewer))
    with LmdbLog(killed) as log:
        _crash_before_done(monkeypatch, {"loop1"})
        with pytest.raises(Crash):
            run_loop(log, killed, log, settings, "l", 1, lambda: make_policy(settings.reviewer))
        monkeypatch.undo()
        resumed = run_loop(log, killed, log, settings, "l", 1, lambda: pytest.fail("the reviewer was asked again"))
        assert resumed.ran == ["1:loop1", "1:report", "1:finish"]
    assert _derived(killed) == _derived(whole)


# ---------------------------------------------------------------------------- both loops


@pytest.mark.slow
def test_both_loops_one_iteration_with_training_then_nothing_new(tmp_path: Path, converted_model: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole iteration in-process: a LoRA version trained on the training seeds' decisions,
    evaluated against the base on the selection seeds, the held-out report, then a second start.
    Killed after training and after evaluation wrote their results, before the loop recorded them."""
    data = tmp_path / "d"
    config = json.dumps(FAST)
    settings = Settings(env="crafter", task="default", train_seeds=(1000, 1001), select_seeds=(2000,),
                        heldout_seeds=(3000,), max_steps=4, loops=(1, 2), policy="random", structure="v0-small",
                        reviewer=_reviewer(tmp_path / "reviewer.jsonl"), train_steps=2, config=config, device="cpu")
    name = loop_id(settings)
    with LmdbLog(data) as log:
        for stage in ("train", "evaluate"):  # the second start finds the version trained, then dies in turn
            _crash_before_done(monkeypatch, {stage})
            with pytest.raises(Crash):
                run_loop(log, data, log, settings, name, 1, lambda: make_policy(settings.reviewer))
            monkeypatch.undo()
        result = run_loop(log, data, log, settings, name, 1, lambda: make_policy(settings.reviewer))
        [row] = result.iterations
        assert result.ran == ["1:evaluate", "1:report", "1:finish"]
        done = [e.stage for e in (r.event for r in log.read_stream(f"loop/{name}")) if isinstance(e, LoopStageDone)]
        assert done == list(stages((1, 2), 1))
        trained = next(e for e in (r.event for r in log.read_stream(f"loop/{name}"))
                       if isinstance(e, LoopStageDone) and e.stage == "train")
        assert trained.outputs["new"] == "false"  # found, not trained a second time
        assert row.candidate_model.startswith("mem-") and row.dataset and row.promoted in (True, False)
        assert {"select.candidate", "select.incumbent", "select.low", "select.high"} <= set(row.selection)
        assert row.model == (row.candidate_model if row.promoted else "")
        promotions = [r.event for r in log.read_stream("model/role-memory")]
        assert len(promotions) == (1 if row.promoted else 0)
        models = [r.event for s in log.streams("model") for r in log.read_stream(s) if isinstance(r.event, ModelVersionCreated)]
        episodes = log.streams("ep")
        again = run_loop(log, data, log, settings, name, 1, lambda: make_policy(settings.reviewer))
        assert again.ran == [] and again.iterations == result.iterations
        assert log.streams("ep") == episodes
        assert [r.event for s in log.streams("model") for r in log.read_stream(s)
                if isinstance(r.event, ModelVersionCreated)] == models and len(models) == 1
        with pytest.raises(UserError, match="train_steps: stored '2', now '3'"):
            run_loop(log, data, log, msgspec.structs.replace(settings, train_steps=3), name, 1, lambda: None)


@pytest.mark.slow
def test_a_probing_loop_reports_probe_accuracy_and_the_baseline_its_control(tmp_path: Path) -> None:
    data, reviewer = tmp_path / "d", _reviewer(tmp_path / "reviewer.jsonl")
    args = _args(data, reviewer, "--compare", "none", "--probes")
    args[args.index("--max-steps") + 1] = "40"
    done = subprocess.run([*LOOP, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["iterations"]
    for part in ("baseline", "heldout", "compare"):  # the baseline agent gets the control's figure, nothing else
        assert 0.0 <= row[part]["heldout.probe_accuracy"] <= 1.0, row[part]
    assert {k for k in row["compare"] if "command" in k} == set()
    with LmdbLog(data, create=False) as log:
        assert log.streams("probe")  # every probed episode's questions are on its stream
    settings = Settings(env="crafter", task="default", train_seeds=(1,), select_seeds=(2,), heldout_seeds=(3,),
                        max_steps=5, loops=(2,))
    assert "probes" not in settings.flat() and msgspec.structs.replace(settings, probes=True).flat()["probes"] == "True"


def test_training_rollouts_sample_on_fresh_seeds_that_a_resume_plays_again() -> None:
    from automem.engine.loop.plan import training_seeds

    old = Settings(env="crafter", task="default", train_seeds=(1, 2), select_seeds=(3,), heldout_seeds=(4,), max_steps=5,
                   loops=(2,))
    later = {"temperature", "top_p", "fresh_seeds", "min_examples", "rollout_budget", "allow_small"}
    assert not later & set(old.flat())  # loops started before these settings keep their ids
    assert old.rollout_sampling.greedy and training_seeds(old, "L", 3) == (1, 2)
    new = msgspec.structs.replace(old, temperature=1.0, top_p=0.9, fresh_seeds=True).check()
    assert new.flat()["temperature"] == "1.0" and loop_id(new) != loop_id(old)
    assert new.rollout_sampling.describe() == "T=1 top-p=0.9"
    assert training_seeds(new, "L", 1) == (1, 2)  # the first iteration's first round plays the seeds given
    rounds = [training_seeds(new, "L", it, r) for it in (1, 2) for r in (0, 1, 2) if (it, r) != (1, 0)]
    assert rounds == [training_seeds(new, "L", it, r) for it in (1, 2) for r in (0, 1, 2) if (it, r) != (1, 0)]
    played = [seed for seeds in rounds for seed in seeds]
    assert len(played) == 10 and len(set(played)) == 10 and not set(played) & {1, 2, 3, 4}
    assert training_seeds(new, "M", 2) != training_seeds(new, "L", 2)
    assert training_seeds(old, "L", 2, 1) == training_seeds(new, "L", 2, 0)  # extra rounds are new seeds either way
    assert all(0 <= seed < 1 << 31 for seed in played)
    for bad, needle in (({"temperature": 3.0}, "--temperature 3 is out of range"),
                        ({"rollout_budget": 1}, "--rollout-budget 1 is under the 2 training seeds"),
                        ({"min_examples": -1}, "--min-examples must be 0 or more")):
        with pytest.raises(UserError, match=needle):
            msgspec.structs.replace(old, **bad).check()


@pytest.mark.slow
def test_loop_2_collects_rollouts_until_the_minimum_or_the_budget_and_says_which(tmp_path: Path) -> None:
    from automem.engine.loop.stages import STAGES, Context
    from automem.engine.rollout.players import Local
    from automem.engine.structure.registry import resolve_structure
    from automem.schemas.events import LoopIterationStarted

    def collect(log: LmdbLog, loop: str, **changes: object) -> tuple[Context, object]:
        s = Settings(env="crafter", task="default", train_seeds=(1, 2), select_seeds=(3,), heldout_seeds=(4,),
                     max_steps=6, loops=(2,), policy="random", structure="v0-small", temperature=1.0, top_p=1.0,
                     fresh_seeds=True, **changes).check()
        version = resolve_structure(log, "crafter", "v0-small", "random")[1]
        c = Context(log, tmp_path / "d", None, s, loop, lambda: make_policy("random"),
                    [LoopIterationStarted(iteration=1, structure=version)], Local(), None)
        return c, STAGES["rollouts"](c, 1, {})

    with LmdbLog(tmp_path / "d") as log:
        c, enough = collect(log, "few", min_examples=5, rollout_budget=8)
        assert enough.stopped == "minimum" and enough.seeds[:2] == (1, 2) and len(enough.seeds) < 8
        assert enough.selectable >= 5 and len(enough.seeds) % 2 == 0  # whole rounds until the minimum
        c, spent = collect(log, "many", min_examples=100_000, rollout_budget=5)
        assert spent.stopped == "budget" and len(spent.episodes) == 5 and len(set(spent.seeds)) == 5
        assert spent.seeds[:2] == (1, 2) and enough.episodes[:2] == spent.episodes[:2]  # round 0 reused across loops
        decoded = decode(encode(1, "rollouts", spent))
        assert decoded == spent and encode(1, "rollouts", spent).outputs["stopped"] == "budget"
        c.events.append(encode(1, "rollouts", spent))
        with pytest.raises(UserError, match=r"gave \d+ examples, under the minimum of 100000: .*--allow-small"):
            STAGES["dataset"](c, 1, {})
        small = msgspec.structs.replace(c.s, allow_small=True)
        c.s = small
        assert STAGES["dataset"](c, 1, {}).examples > 0


def test_settings_a_later_stage_would_refuse_are_refused_before_the_loop_is_recorded(tmp_path: Path) -> None:
    """An unknown structure, a training device this machine lacks, a base that is no model, a bad
    trainer config: one line, exit 2, no loop left behind (each is part of a loop's id, so a loop
    recorded with it could never finish)."""
    data = tmp_path / "d"
    base = ["run", "--data", str(data), "--policy", "random", "--loops", "2", "--min-examples", "0"]
    import torch

    bad = [(["--structure", "nope"], "no structure 'nope'"), (["--device", "tpu"], "bad --device 'tpu'"),
           (["--device", "cpu:0"], "bad --device 'cpu:0'")]
    bad += [] if torch.cuda.is_available() else [(["--device", "cuda"], "--device cuda")]
    (tmp_path / "bad.toml").write_text('learning_rate = "fast"\n')
    (tmp_path / "broken.toml").write_text("rank = [\n")
    bad += [(["--base", str(tmp_path)], "is not a Hugging Face model folder"),
            (["--config", str(tmp_path / "bad.toml")], "bad training setting"),
            (["--config", str(tmp_path / "broken.toml")], "is not valid TOML")]
    for extra, needle in bad:
        proc = subprocess.run([*LOOP, *base, *extra], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    with LmdbLog(data, create=False) as log:
        assert log.streams("loop") == []
    usage = subprocess.run([*LOOP, "run", "--bogus"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and usage.stderr.strip().endswith("(see `automem loop run --help`)")
