"""Memory probes over recorded episodes of the real games: events on the probe stream, both arms,
lookups answered over the memory as it was, answers re-checked from the log alone, runs reused,
a failing reader recorded and retried, the CLI's one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from automem.engine.log import LmdbLog
from automem.engine.memory import EMPTY
from automem.engine.policy.file_policy import FilePolicy
from automem.engine.policy.random_policy import RandomPolicy
from automem.engine.probes import probe_episode
from automem.engine.probes.check import correct
from automem.engine.probes.kinds import KINDS
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.agent import agent_spec
from automem.schemas.events import LLMCalled, MemoryOpApplied, ProbeAnswered, ProbeAsked
from automem.schemas.streams import probe_stream
from tests.support.cli import assert_user_error, automem


def played(tmp_path: Path, env: str = "nethack", steps: int = 60, agent: str = "memory") -> tuple[Path, str]:
    data = tmp_path / "d"
    [row] = run(RunRequest(env=env, task=None, episodes=1, max_steps=steps, seed=1, policy="random", data=str(data),
                           agent=agent_spec(agent)))
    return data, row.id


def probe_events(data: Path, episode: str) -> list:
    with LmdbLog(data) as log:
        return [r.event for r in log.read_stream(probe_stream(episode))]


def answers_file(path: Path, lines: list[str]) -> FilePolicy:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    return FilePolicy(path)


@pytest.mark.parametrize("env", ["crafter", "minihack", "nethack"])
def test_a_probe_run_is_events_rechecked_from_the_log_and_reused(tmp_path: Path, env: str) -> None:
    data, episode = played(tmp_path, env, steps=80)
    with LmdbLog(data) as log:
        result = probe_episode(log, episode, RandomPolicy(), every=20)
        again = probe_episode(log, episode, RandomPolicy(), every=20)
    events = probe_events(data, episode)
    asked = [e for e in events if isinstance(e, ProbeAsked)]
    answered = [e for e in events if isinstance(e, ProbeAnswered)]
    assert len(asked) == len(answered) == len(result.probes) > 0
    assert {a.arm for a in asked} == {"memory", "control"}
    assert all(a.memory_digest == EMPTY.digest() for a in asked if a.arm == "control")
    assert all(isinstance(e, (ProbeAsked, ProbeAnswered, LLMCalled, MemoryOpApplied)) for e in events)
    assert all(e.phase == "probe" and e.role == "reader" for e in events if isinstance(e, LLMCalled))
    keys = {(a.probe, a.arm): a for a in asked}
    for ans in answered:  # the verdict follows from the log alone
        probe = keys[(ans.probe, ans.arm)]
        assert ans.correct == correct(KINDS[probe.kind].answer, probe.key, ans.answer)
    assert again.reused == len(again.probes) and again.probes == result.probes and again.run == result.run
    assert len(probe_events(data, episode)) == len(events)  # nothing asked twice


def test_lookups_read_the_memory_as_it_was_and_the_control_has_none(tmp_path: Path) -> None:
    data, episode = played(tmp_path, "minihack", steps=30)
    # every reader turn: read a seeded file of the v0 structure, then answer
    reader = answers_file(tmp_path / "r.jsonl", ["<|READ|>dungeon_map.txt<|END|>", "<|ANSWER|>a dagger<|END|>"] * 200)
    with LmdbLog(data) as log:
        result = probe_episode(log, episode, reader, at=[29], kinds=["item_in_slot", "message_at"])
    reads = [e for e in probe_events(data, episode) if isinstance(e, (ProbeAsked, MemoryOpApplied))]
    arm = ""
    seen = {"memory": [], "control": []}
    for e in reads:
        if isinstance(e, ProbeAsked):
            arm = e.arm
        else:
            seen[arm].append(e.ok)
    assert seen["memory"] and all(seen["memory"]) and seen["control"] and not any(seen["control"])
    assert all(p.answer == "a dagger" for p in result.probes)


def test_a_failing_reader_is_recorded_and_the_next_run_retries_only_those(tmp_path: Path) -> None:
    data, episode = played(tmp_path, "nethack", steps=60)
    with LmdbLog(data) as log:
        full = probe_episode(log, episode, RandomPolicy(), every=20)
    n = len(full.probes)
    assert n >= 4
    script = tmp_path / "answers.jsonl"  # the same reader (its name is the file's), first with 3 answers
    with LmdbLog(data) as log:
        first = probe_episode(log, episode, answers_file(script, ["<|ANSWER|>1<|END|>"] * 3), every=20, turns=1)
        second = probe_episode(log, episode, answers_file(script, ["<|ANSWER|>1<|END|>"] * n), every=20, turns=1)
    assert first.failed == n - 3 and all("exhausted" in p.error for p in first.probes if p.error)
    assert [p.answer for p in first.probes if not p.error] == ["1"] * 3
    assert second.failed == 0 and second.reused == 3 and len(second.probes) == n
    failed = [e for e in probe_events(data, episode) if isinstance(e, ProbeAnswered) and e.error]
    assert len(failed) == n - 3 and not any(e.correct for e in failed)


def test_an_agent_without_memory_gets_the_control_alone(tmp_path: Path) -> None:
    data, episode = played(tmp_path, "crafter", steps=40, agent="none")
    with LmdbLog(data) as log:
        result = probe_episode(log, episode, RandomPolicy(), every=10)
    assert result.agent == "none" and {p.arm for p in result.probes} <= {"control"}
    assert result.overall.memory.accuracy is None


def test_probe_cli_prints_a_table_and_json_and_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    data, episode = played(tmp_path, "nethack", steps=30)
    base = ["probe", episode, "--data", str(data)]
    done = automem(*base, "--every", "10", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["episode"] == episode and doc["reader"] == "random" and doc["overall"]["kind"] == "all"
    scored = automem(*base, "--every", "10", "--score", "--json", cwd=tmp_path)
    assert scored.returncode == 0 and json.loads(scored.stdout)["scores"]["scorer"].startswith("probes-")
    table = automem(*base, "--every", "10", cwd=tmp_path)
    assert table.returncode == 0 and "with memory" in table.stdout and "reused" in table.stdout
    assert_user_error(automem(*base, "--at", "30", cwd=tmp_path), "--at 30: outside the episode (steps 0..29)")
    assert_user_error(automem(*base, "--at", "3", "--every", "2", cwd=tmp_path), "give one")
    assert_user_error(automem(*base, "--kinds", "unlocked_at", cwd=tmp_path), "nethack has the probe kinds")
    assert_user_error(automem(*base, "--at", "x", cwd=tmp_path), "--at 'x'")
    assert_user_error(automem(*base, "--turns", "0", cwd=tmp_path), "--turns 0")
    assert_user_error(automem(*base, "--reader", "nonsense", cwd=tmp_path), "bad --policy")
    assert_user_error(automem("probe", "nope", "--data", str(data), cwd=tmp_path), "unknown episode 'nope'")
    dead = automem(*base, "--reader", "openai:m@http://127.0.0.1:9", cwd=tmp_path)
    assert_user_error(dead, "127.0.0.1:9")


def test_show_lists_the_probes_at_their_step(tmp_path: Path) -> None:
    from rich.console import Console

    from automem.engine.views.show import render, show_trace

    data, episode = played(tmp_path, "nethack", steps=30)
    with LmdbLog(data) as log:
        result = probe_episode(log, episode, RandomPolicy(), at=[29])
        shown = show_trace(log, episode, 29, 29)
    [last] = shown.steps
    assert [(p.arm, p.kind, p.key, p.answer, p.correct) for p in last.probes] == [
        (p.arm, p.kind, p.key, p.answer, p.correct) for p in result.probes] and result.probes
    console = Console(record=True, width=200, color_system=None)
    render(shown, console)
    text = console.export_text()
    assert "probe [memory, random]" in text and "probe [control, random]" in text and "key " in text


def test_probe_credit_scores_the_writes_a_probe_was_shown_and_never_an_evaluation_episode(tmp_path: Path) -> None:
    from automem.engine.episodes.read import read_episode
    from automem.engine.memory import WRITE_KINDS
    from automem.engine.probes.credit import RULE, score_probes
    from automem.engine.probes.kinds import kinds_of, probes_at
    from automem.engine.probes.run import memory_after
    from automem.schemas.errors import UserError
    from automem.schemas.events import DecisionScored, ModelVersionEvaluated
    from automem.schemas.streams import model_stream, score_stream

    data, episode = played(tmp_path, "nethack", steps=40)
    at = [19, 39]
    with LmdbLog(data) as log:
        record = read_episode(log, episode)
        probes = [p for t in at for p in probes_at("nethack", episode, record.steps, t, kinds_of("nethack"), 0)]
        files = {t: sorted(m.files) for t, m in memory_after(episode, record.events, set(at)).items()}
    assert len(probes) >= 2
    lines = [text for i, p in enumerate(probes) for _ in ("memory", "control")
             for text in ("".join(f"<|READ|>{name}<|END|>" for name in files[p.step]),
                          (p.key if i == 0 else "no idea") + "<|END|>")]
    with LmdbLog(data) as log:
        result = probe_episode(log, episode, answers_file(tmp_path / "r.jsonl", lines), at=at, turns=2)
        version, written = score_probes(log, episode, result.run)
        assert score_probes(log, episode, result.run) == (version, 0)  # idempotent
        scores = [r.event for r in log.read_stream(score_stream(episode)) if isinstance(r.event, DecisionScored)]
    verdicts = [(p.index, p.correct) for p in result.probes if p.arm == "memory"]
    assert verdicts[0] == (0, True) and not any(ok for _, ok in verdicts[1:])
    assert written == len(scores) > 0 and all(s.rule == RULE and s.scorer == version for s in scores)
    assert any(s.components.get("probe_right", 0) > 0 for s in scores)
    assert any(s.components.get("probe_wrong", 0) < 0 for s in scores)
    assert all(s.kind in WRITE_KINDS for s in scores if s.index is not None)
    assert all(s.phase in ("log", "plan") for s in scores)  # the model's writes, never seeded or derived lines
    with LmdbLog(data) as log:  # once an evaluation has played it, the episode feeds no score
        log.append(model_stream("mem-x"), 0, [ModelVersionEvaluated(name="mem-x", seeds=(1,), mean_progression=0.0,
                                                                    episodes=(episode,))])
        with pytest.raises(UserError, match="the evaluation of mem-x"):
            score_probes(log, episode, result.run)


def test_the_report_page_carries_the_probes_at_their_step(tmp_path: Path) -> None:
    import re

    from automem.engine.views.report import episode_report

    data, episode = played(tmp_path, "nethack", steps=30)
    with LmdbLog(data) as log:
        result = probe_episode(log, episode, RandomPolicy(), at=[29])
        page = episode_report(log, episode)
    doc = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)[1])
    steps = {s["step"]: s for s in doc["steps"]}
    assert [(p["arm"], p["key"], p["answer"]) for p in steps[29]["probes"]] == [
        (p.arm, p.key, p.answer) for p in result.probes] and not steps[28]["probes"]
    assert "Memory probes (" in page


def test_probe_runs_replay_without_the_model_and_a_tampered_answer_diverges(tmp_path: Path) -> None:
    from automem.engine.probes.replay import replay_probes

    data, episode = played(tmp_path, "crafter", steps=60)
    reader = answers_file(tmp_path / "r.jsonl", ["<|SEARCH|>*|tree<|END|>", "<|ANSWER|>3<|END|>", "4 north"] * 100)
    with LmdbLog(data) as log:
        first = probe_episode(log, episode, RandomPolicy(), every=20)
        second = probe_episode(log, episode, reader, every=20, turns=2)
        replayed = replay_probes(log, episode)
    assert replayed.askings == len(first.probes) + len(second.probes) > 0
    assert replayed.verified == replayed.askings and replayed.diverged == []
    done = automem("probe", episode, "--verify", "--data", str(data), cwd=tmp_path)
    assert done.returncode == 0 and f"{replayed.askings}/{replayed.askings} probe askings verified" in done.stdout
    with LmdbLog(data) as log:  # an answer that the recorded reader never gave
        asked = next(e for e in probe_events(data, episode) if isinstance(e, ProbeAsked))
        log.append(probe_stream(episode), log.head(probe_stream(episode)), [
            msgspec.structs.replace(asked, run="pr-forged"),
            ProbeAnswered(run="pr-forged", probe=asked.probe, arm=asked.arm, answer="forged", correct=True)])
    tampered = automem("probe", episode, "--verify", "--data", str(data), cwd=tmp_path)
    assert tampered.returncode == 3 and "DIVERGED pr-forged" in tampered.stdout
