"""The dataset engine: verbatim examples rebuilt by replay, the fixed post-processing, selection, content addressing."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Callable

import msgspec
import pytest

from automem.engine.agent.parser import vocabulary
from automem.engine.agent.prompts import prompt_digest
from automem.engine.dataset import Selection, build_dataset
from automem.engine.dataset.build import DatasetResult
from automem.engine.dataset.examples import MISMATCH, NOT_MEMORY, example
from automem.engine.dataset.postprocess import (
    ACTION,
    CODE_FENCE,
    NO_COMMAND,
    Rejection,
    clean,
)
from automem.engine.dataset.select import (
    Decision,
    balanced,
    by_score,
    capped,
    distinct,
    drawn,
    top_episodes,
)
from automem.engine.log import LmdbLog
from automem.engine.log.port import EventLog
from automem.engine.policy.base import PolicyRequest
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.engine.structure.registry import stored_structures
from automem.engine.structure.seeds import v0
from automem.schemas.errors import UserError
from automem.schemas.events import (
    DatasetBuilt,
    DecisionScored,
    EpisodeStarted,
    LLMCalled,
    StepTaken,
)
from automem.schemas.streams import score_stream

from ..support.cli import assert_user_error, automem

VOCAB = vocabulary(v0("crafter"))

# A Crafter episode of 3 steps under v0 (several turns per phase), one answer per line.
SCRIPT = [
    "Let me look first.<|READ|>strategy.txt<|END|>",  # step 0 PLAN turn 0: a lookup
    "<|ACTION|>Move West<|END|>",  # turn 1: the action alone, no memory command
    "<|APPEND|>map_notes.txt|tree 3 north, 4 west<|END|> That is all for now.",  # step 1 LOG turn 0: prose after
    "<|READ|>map_notes.txt<|END|><|DONE|> and then <|APPEND|>strategy.txt|never applied<|END|>",  # turn 1: after DONE
    "<|SEARCH|>map_notes.txt|tree<|END|><|ACTION|>Move North<|END|>",  # step 1 PLAN: a lookup, then the action
    "```\n<|APPEND|>actions_log.txt|moved north<|END|>\n```<|DONE|>",  # step 2 LOG: a code fence
    "<|ACTION|>Noop<|END|>",  # step 2 PLAN
]


def record(tmp_path: Path, answers: list[str], steps: int, data: Path | None = None) -> tuple[Path, str]:
    path = tmp_path / f"answers-{len(list(tmp_path.glob('answers-*')))}.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in answers))
    data = data or tmp_path / "d"
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=steps, seed=0, policy=f"file:{path}",
                               structure="v0", data=str(data)))
    assert summary.status == "ended", summary
    return data, summary.id


def calls(log: EventLog, episode: str) -> list[LLMCalled]:
    return [r.event for r in log.read_stream(f"ep/{episode}") if isinstance(r.event, LLMCalled)]


def score(log: EventLog, episode: str, value: Callable[[LLMCalled], float] = lambda c: 1.0,
          scorer: str = "s1") -> None:
    """Hand-written scores of every answer (index None), plus one per-command score that selection must ignore."""
    stream = score_stream(episode)
    events = [DecisionScored(episode=episode, step=c.step, phase=c.phase, turn=c.turn, score=value(c), rule="rules",
                             kind="answer", scorer=scorer) for c in calls(log, episode)]
    events.append(msgspec.structs.replace(events[0], index=0, kind="read", score=99.0))
    log.append(stream, log.head(stream), events)


def lines(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def assert_verbatim(log: EventLog, result_path: str, manifest_path: str) -> None:
    """Every example: the conversation as sent (its digest is the recorded one, any answer prefix
    put back), and an answer that is a substring of the recorded response."""
    manifest = json.loads(Path(manifest_path).read_text())
    examples = lines(result_path)
    assert len(examples) == manifest["examples"] == len(manifest["decisions"])
    for ex, used in zip(examples, manifest["decisions"]):
        messages = ex["messages"]
        assert set(ex) == {"messages"} and messages[0]["role"] == "system" and messages[-1]["role"] == "assistant"
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in messages)
        [call] = [c for c in calls(log, used["episode"])
                  if (c.step, c.phase, c.turn) == (used["step"], used["phase"], used["turn"])]
        start = next(log.read_stream(f"ep/{used['episode']}")).event
        assert isinstance(start, EpisodeStarted)
        structure = stored_structures(log, start.env)[start.structure]
        prime = structure.log_prime if call.phase == "log" else structure.plan_prime
        if call.phase == "plan" and call.turn < structure.max_plan_turns - 1 and structure.plan_lookup_prime:
            prime = structure.plan_lookup_prime  # a lookup turn's prefix
        sent = messages[:-1] + ([{"role": "assistant", "content": prime}] if prime else [])
        assert prompt_digest(sent) == call.prompt_digest
        assert messages[-1]["content"] in call.response and call.response.startswith(messages[-1]["content"])
        assert used["model"] == call.model


# ------------------------------------------------------------------ post-processing


@pytest.mark.parametrize("phase,response,cleaned", [
    ("log", "<|APPEND|>a.txt|x<|END|><|DONE|> more <|APPEND|>a.txt|y<|END|>", "<|APPEND|>a.txt|x<|END|><|DONE|>"),
    ("plan", "<|READ|>a.txt<|END|>\n<|ACTION|>Noop<|END|>", "<|READ|>a.txt<|END|>"),
    ("log", "<|APPEND|>a.txt|x<|END|> I hope this helps!", "<|APPEND|>a.txt|x<|END|>"),
    ("plan", "Thinking. <|SEARCH|>*|tree<|END|> then <|TAIL|>a.txt|3<|END|> ok", "Thinking. <|SEARCH|>*|tree<|END|> then <|TAIL|>a.txt|3<|END|>"),
    ("log", "<|APPEND|>a.txt|no terminator, the line runs to the end", "<|APPEND|>a.txt|no terminator, the line runs to the end"),
    ("log", "<APPEND>a.txt|x</APPEND><DONE>", "<APPEND>a.txt|x</APPEND><DONE>"),
    ("log", "<|APPEND|>a.txt|x<|END|>", "<|APPEND|>a.txt|x<|END|>"),
])
def test_post_processing_cuts_the_answer_where_its_last_command_ends(phase: str, response: str, cleaned: str) -> None:
    assert clean(response, VOCAB, phase) == cleaned
    assert response.startswith(cleaned)


@pytest.mark.parametrize("phase,response,reason", [
    ("plan", "<|ACTION|>Noop<|END|>", NO_COMMAND),
    ("plan", "<|ACTION|>Noop<|END|><|READ|>a.txt<|END|>", NO_COMMAND),  # never applied: the action ends the answer
    ("log", "<|DONE|><|APPEND|>a.txt|x<|END|>", NO_COMMAND),
    ("log", "I have nothing to add.", NO_COMMAND),
    ("plan", "<|APPEND|>a.txt|x<|END|><|ACTION|>Noop<|END|>", NO_COMMAND),  # APPEND is not a PLAN command
    ("log", "```\n<|APPEND|>a.txt|x<|END|>\n```<|DONE|>", CODE_FENCE),
    ("log", "<|ACTION|>Noop<|END|><|APPEND|>a.txt|x<|END|>", ACTION),
])
def test_post_processing_rejects(phase: str, response: str, reason: str) -> None:
    assert clean(response, VOCAB, phase) == Rejection(reason)


def test_a_fence_after_the_last_command_is_cut_off_not_rejected() -> None:
    assert clean("<|APPEND|>a.txt|x<|END|>\n```", VOCAB, "log") == "<|APPEND|>a.txt|x<|END|>"


# ------------------------------------------------------------------------ selection


def decision(episode: str, step: int, phase: str, score: float, env: str = "crafter", answer: str = "") -> Decision:
    return Decision(episode=episode, step=step, phase=phase, turn=0, score=score, env=env, answer=answer or f"a{step}")


def test_selection_filters_are_deterministic_and_break_ties_by_place() -> None:
    ds = [decision(e, s, p, sc) for e, s, p, sc in [("b", 1, "log", 0.5), ("a", 2, "plan", 0.5), ("a", 1, "log", 0.9),
                                                      ("c", 1, "plan", -1.0), ("c", 2, "log", 0.0)]]
    shuffled = random.Random(0).sample(ds, len(ds))
    assert [d.key for d in by_score(shuffled, None, 0.4)] == [("a", 1, "log", 0), ("a", 2, "plan", 0)]
    assert {d.key for d in by_score(ds, None, None)} == {d.key for d in ds if d.score > 0}
    assert {d.key for d in by_score(ds, 0.0, None)} == {d.key for d in ds if d.score >= 0}
    strength = {"a": (0.1, 3.0), "b": (0.1, 5.0), "c": (0.5, 0.0)}  # progression first, then return
    assert {d.episode for d in top_episodes(ds, strength, 0.5)} == {"c", "b"}
    assert {d.episode for d in top_episodes(ds, strength, 0.01)} == {"c"}  # a fraction keeps at least one


def test_near_duplicates_keep_the_best_scored() -> None:
    ds = [decision("a", 1, "log", 0.2, answer="<|APPEND|>x.txt|step 3: Noop<|END|>"),
          decision("b", 1, "log", 0.7, answer="<|append|>x.txt|Step 4:  noop<|END|>"),
          decision("c", 1, "plan", 0.1, answer="<|APPEND|>x.txt|step 3: Noop<|END|>"),  # another phase: kept
          decision("d", 1, "log", 0.1, answer="<|APPEND|>x.txt|step 3: Move<|END|>")]
    assert sorted(d.episode for d in distinct(ds)) == ["b", "c", "d"]


def test_balance_takes_the_smallest_groups_size_and_the_cap_keeps_it_balanced() -> None:
    ds = ([decision("a", i, "log", i / 10) for i in range(6)] + [decision("a", i, "plan", i / 10) for i in range(2)]
          + [decision("n", i, "log", i / 10, env="nethack") for i in range(3)]
          + [decision("n", i, "plan", i / 10, env="nethack") for i in range(4)])
    kept = balanced(ds)
    assert len(kept) == 8 and all(sum(1 for d in kept if (d.env, d.phase) == g) == 2
                                  for g in {(d.env, d.phase) for d in ds})
    assert sorted(d.step for d in kept if (d.env, d.phase) == ("crafter", "log")) == [4, 5]  # the best of each
    assert sorted((d.env, d.phase) for d in capped(kept, 4, balance=True)) == sorted({(d.env, d.phase) for d in ds})
    assert [d.score for d in capped(ds, 2, balance=False)] == [0.5, 0.4]


def test_a_random_draw_ignores_the_scores_and_is_a_function_of_its_seed() -> None:
    ds = [decision(e, s, p, sc) for e, s, p, sc in [("a", i, ph, float(i)) for i in range(8) for ph in ("log", "plan")]]
    first = capped(distinct(ds, drawn(1)), 4, False, drawn(1))
    assert first == capped(distinct(random.Random(3).sample(ds, len(ds)), drawn(1)), 4, False, drawn(1))
    assert first != capped(ds, 4, False) and {d.key for d in first} != {d.key for d in capped(ds, 4, False, drawn(2))}
    assert len(capped(ds, 4, True, drawn(1))) == 4 and {d.phase for d in capped(ds, 4, True, drawn(1))} == {"log", "plan"}
    with pytest.raises(UserError, match="--random draws decisions instead"):
        Selection(sample=3, min_score=0.0).check()
    with pytest.raises(UserError, match="--random must be at least 1"):
        Selection(sample=0).check()
    # a selection without a draw is recorded as before the draw existed: its dataset keeps its id
    assert "sample" not in Selection(balance=False).recorded() and Selection(sample=2).recorded()["sample"] == 2


# ------------------------------------------------------------------------ examples


def test_a_conversation_that_does_not_match_its_digest_is_refused() -> None:
    sent = ({"role": "system", "content": "s"}, {"role": "user", "content": "u"})
    call = LLMCalled(step=0, phase="plan", turn=0, role="agent", model="m", prompt_digest=prompt_digest(list(sent)),
                     response="<|READ|>a.txt<|END|>")
    good = example(call, PolicyRequest(messages=sent), "<|READ|>a.txt<|END|>")
    assert not isinstance(good, Rejection) and good.messages[-1] == {"role": "assistant", "content": "<|READ|>a.txt<|END|>"}
    changed = (sent[0], {"role": "user", "content": "u!"})
    assert example(call, PolicyRequest(messages=changed), "x") == Rejection(MISMATCH)


@pytest.mark.slow
def test_scripted_episode_builds_verbatim_examples(tmp_path: Path) -> None:
    data, episode = record(tmp_path, SCRIPT, 3)
    with LmdbLog(data) as log:
        score(log, episode)
        result = build_dataset(log, data, Selection(balance=False))
        assert_verbatim(log, result.path, result.manifest)
        answers = [ex["messages"][-1]["content"] for ex in lines(result.path)]
        assert answers == ["Let me look first.<|READ|>strategy.txt<|END|>",
                           "<|APPEND|>map_notes.txt|tree 3 north, 4 west<|END|>",
                           "<|READ|>map_notes.txt<|END|><|DONE|>",
                           "<|SEARCH|>map_notes.txt|tree<|END|>"]
        # the turn-1 LOG answer is taught with the turn before it and its results, as the model saw them
        second = lines(result.path)[2]["messages"]
        assert [m["role"] for m in second] == ["system", "user", "assistant", "user", "assistant"]
        assert second[2]["content"] == SCRIPT[2] and second[3]["content"].startswith("[APPEND map_notes.txt]")
        assert result.rejected == {NO_COMMAND: 2, CODE_FENCE: 1}
        assert result.counts == {"phase": {"log": 2, "plan": 2}, "env": {"crafter": 4},
                                 "command": {"append": 1, "read": 2, "search": 1}}
        [built] = [r.event for r in log.read_stream(f"dataset/{result.dataset}")]
        assert isinstance(built, DatasetBuilt) and built.sha256 == result.sha256 and built.scorer == "s1"
        assert (data / built.path).read_bytes() == Path(result.path).read_bytes()
        assert result.new and built.episodes == (episode,)


@pytest.mark.slow
def test_the_same_selection_twice_gives_the_same_dataset(tmp_path: Path) -> None:
    data, episode = record(tmp_path, SCRIPT, 3)
    with LmdbLog(data) as log:
        score(log, episode)
        first = build_dataset(log, data, Selection(balance=False))
        files = {p.name: p.read_bytes() for p in Path(first.path).parent.iterdir()}
        shutil.rmtree(Path(first.path).parent)  # rebuilt from the log alone: the same bytes again
        again = build_dataset(log, data, Selection(balance=False))
        assert (again.dataset, again.sha256, again.new) == (first.dataset, first.sha256, False)
        assert {p.name: p.read_bytes() for p in Path(again.path).parent.iterdir()} == files
        assert log.head(f"dataset/{first.dataset}") == 1  # announced once
        other = build_dataset(log, data, Selection(balance=False, max_examples=2))
        assert other.dataset != first.dataset and other.examples == 2
        drawn_set = build_dataset(log, data, Selection(balance=False, sample=2, sample_seed=5))
        assert drawn_set.examples == 2 and drawn_set.dataset not in (first.dataset, other.dataset)
        assert drawn_set.removed == {"near-duplicates": 0, "random draw": 2}
        built = [r.event for r in log.read_stream(f"dataset/{drawn_set.dataset}")][0]
        assert built.params["sample"] == "2" and "sample" not in [r.event for r in log.read_stream(
            f"dataset/{first.dataset}")][0].params
        assert sorted(p.name for p in (data / "datasets").iterdir()) == sorted([first.dataset, other.dataset,
                                                                               drawn_set.dataset])
    manifest = Path(first.manifest).read_text()
    assert "ts" not in json.loads(manifest) and json.loads(manifest)["selection"]["scorer"] == "s1"


@pytest.mark.slow
def test_scorer_versions_are_kept_apart(tmp_path: Path) -> None:
    data, episode = record(tmp_path, SCRIPT, 3)
    with LmdbLog(data) as log:
        score(log, episode, scorer="old")
        score(log, episode, value=lambda c: -1.0, scorer="new")
        with pytest.raises(UserError, match="kept nothing.*score removed 4"):
            build_dataset(log, data, Selection(balance=False))  # the newest version: every answer below 0
        assert build_dataset(log, data, Selection(scorer="old", balance=False)).examples == 4
        with pytest.raises(UserError, match="no DecisionScored events for scorer nope.*automem score.*new, old"):
            build_dataset(log, data, Selection(scorer="nope"))


@pytest.mark.slow
def test_bad_input(tmp_path: Path) -> None:
    with LmdbLog(tmp_path / "empty") as log:
        with pytest.raises(UserError, match="no episodes"):
            build_dataset(log, tmp_path / "empty", Selection())
    data, episode = record(tmp_path, SCRIPT, 3)
    with LmdbLog(data) as log:
        with pytest.raises(UserError, match="run `automem score` first"):
            build_dataset(log, data, Selection())
        score(log, episode)
        with pytest.raises(UserError, match="--min-score or --top"):
            build_dataset(log, data, Selection(min_score=0.0, top=0.5))
        with pytest.raises(UserError, match="kept nothing of the 7 decisions scored by s1: env removed 7"):
            build_dataset(log, data, Selection(env="nethack"))
    assert not (data / "datasets").exists()
    assert_user_error(automem("dataset", "build", "--data", str(data), "--min-score", "2", cwd=tmp_path),
                      "kept nothing", "score removed 4", "2 refused: no memory command")
    assert_user_error(automem("dataset", "build", "--data", str(data), "--scorer", "nope", cwd=tmp_path),
                      "run `automem score` first")
    assert_user_error(automem("dataset", "build", "--data", str(tmp_path / "none"), cwd=tmp_path), "no automem data")
    ok = automem("dataset", "build", "--data", str(data), "--no-balance", "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert {"dataset", "examples", "path", "sha256", "rejected", "manifest", "scorer"} <= set(doc)
    assert doc["examples"] == 4 and Path(doc["path"]).is_file() and doc["rejected"] == {CODE_FENCE: 1, NO_COMMAND: 2}
    table = automem("dataset", "build", "--data", str(data), "--no-balance", cwd=tmp_path)
    assert table.returncode == 0 and doc["dataset"] in table.stdout and "built before" in table.stdout


OTHER = ["<|TAIL|>strategy.txt|1<|END|>", "<|ACTION|>Noop<|END|>", "<|APPEND|>survival_log.txt|all fine<|END|><|DONE|>",
         "<|COUNT|>survival_log.txt|fine<|END|><|ACTION|>Noop<|END|>", "<|DONE|>", "<|ACTION|>Noop<|END|>"]


@pytest.mark.slow
def test_episodes_that_no_longer_replay_are_skipped_and_counted(tmp_path: Path) -> None:
    data, good = record(tmp_path, SCRIPT, 3)
    _, bad = record(tmp_path, OTHER, 3, data)
    _, orphan = record(tmp_path, SCRIPT, 3, data)
    copy = tmp_path / "copy"
    with LmdbLog(data) as src, LmdbLog(copy) as dst:
        for stream in ["structure/crafter", f"ep/{good}", f"ep/{bad}", f"ep/{orphan}"]:
            events = [r.event for r in src.read_stream(stream)]
            if stream.endswith(bad):  # the recorded observation of step 1 no longer matches the env
                events = [msgspec.structs.replace(e, observation=e.observation + "!")
                          if isinstance(e, StepTaken) and e.step == 1 else e for e in events]
            if stream.endswith(orphan):  # recorded under a structure this store does not hold
                events[0] = msgspec.structs.replace(events[0], structure="crafter-v9-gone")
            dst.append(stream, 0, events)
        for episode in (good, bad, orphan):
            score(dst, episode)
        result = build_dataset(dst, copy, Selection(balance=False))
        assert result.examples == 4 and result.episodes == 1
        assert result.rejected == {NO_COMMAND: 5, CODE_FENCE: 1, "replay diverged": 3, "episode does not replay": 7}
        assert_verbatim(dst, result.path, result.manifest)


# --------------------------------------------------------------------- all games


@pytest.mark.slow
def test_random_episodes_of_every_game_build(tmp_path: Path) -> None:
    data = tmp_path / "d"
    for env, task in (("crafter", None), ("nethack", None), ("minihack", "corridor-r3")):
        run(RunRequest(env=env, task=task, episodes=2, max_steps=15, seed=3, policy="random", structure="v0",
                       data=str(data)))
    with LmdbLog(data) as log:
        episodes = [s.split("/", 1)[1] for s in log.streams("ep")]
        for episode in episodes:
            score(log, episode, value=lambda c: (c.step * 7 + c.turn) % 5 - 1.5)
        result = build_dataset(log, data, Selection(top=0.8, top_episodes=0.9))
        assert set(result.counts["env"]) == {"crafter", "nethack", "minihack"} and not set(result.rejected) - {NO_COMMAND}
        per_group = {(d["env"], d["phase"]) for d in json.loads(Path(result.manifest).read_text())["decisions"]}
        assert len(per_group) == 6 and result.examples % 6 == 0  # balanced over games and phases
        assert_verbatim(log, result.path, result.manifest)
        # only the episodes of some seeds (a loop's training seeds): none of the others' decisions
        seed4 = build_dataset(log, data, Selection(min_score=-10, seeds=(4,)))
        kept = {d["episode"] for d in json.loads(Path(seed4.manifest).read_text())["decisions"]}
        assert kept and all("-s4-" in e for e in kept) and seed4.dataset != result.dataset


@pytest.mark.slow
def test_with_two_models_only_the_memory_models_answers_are_examples(tmp_path: Path) -> None:
    data = tmp_path / "d"
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=20, seed=1, policy="random",
                               memory_policy="random", structure="v0", data=str(data)))
    with LmdbLog(data) as log:
        assert {c.role for c in calls(log, summary.id) if c.phase == "plan"} == {"agent", "memory"}
        score(log, summary.id)
        result = build_dataset(log, data, Selection(balance=False))
        assert result.rejected[NOT_MEMORY] == sum(c.role == "agent" for c in calls(log, summary.id))
        by_place = {(c.step, c.phase, c.turn): c for c in calls(log, summary.id)}
        decisions = json.loads(Path(result.manifest).read_text())["decisions"]
        assert decisions and all(by_place[(d["step"], d["phase"], d["turn"])].role == "memory" for d in decisions)
        assert_verbatim(log, result.path, result.manifest)


@pytest.mark.slow
def test_a_local_model_episode_builds_without_its_answer_prefix_twice(tmp_path: Path, converted_model: Path) -> None:
    data = tmp_path / "d"
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=3, seed=0, policy="local", data=str(data)))
    with LmdbLog(data) as log:
        assert next(log.read_stream(f"ep/{summary.id}")).event.structure.startswith("crafter-v0-small")
        score(log, summary.id)
        result = build_dataset(log, data, Selection(balance=False, min_score=0.0))
        assert result.examples >= 1 and result.rejected.get(MISMATCH, 0) == 0
        assert_verbatim(log, result.path, result.manifest)
        # auto's small structure: the primed LOG line and the primed lookup are examples, the action turn is not
        for ex in lines(result.path):
            assert ex["messages"][-1]["content"].startswith(("<|APPEND|>actions_log.txt|", "<|SEARCH|>*|"))
            assert all(m["role"] != "assistant" for m in ex["messages"][:-1])  # the prefix is in the answer only


@pytest.mark.slow
def test_the_datasets_library_reads_the_file(tmp_path: Path) -> None:
    import datasets
    data, episode = record(tmp_path, SCRIPT, 3)
    with LmdbLog(data) as log:
        score(log, episode)
        result = build_dataset(log, data, Selection(balance=False))
    loaded = datasets.load_dataset("json", data_files=result.path, split="train")
    assert len(loaded) == 4 and loaded[0]["messages"][-1]["role"] == "assistant"


def built_dataset(tmp_path: Path) -> tuple[Path, DatasetResult, DatasetBuilt]:
    """A store with one scripted episode, scored, and the dataset built from it."""
    from automem.engine.training.inputs import find_dataset

    data, episode = record(tmp_path, SCRIPT, 3)
    with LmdbLog(data) as log:
        score(log, episode)
        built = build_dataset(log, data, Selection(balance=False))
        return data, built, find_dataset(log, built.dataset)


@pytest.mark.slow
def test_a_tampered_manifest_or_a_file_that_is_not_regular_is_refused_before_training(tmp_path: Path) -> None:
    """Issue 25, 3: an edited `models` list let `train` skip --distill; a FIFO made it hang forever."""
    import os

    from automem.engine.training.inputs import load_dataset

    data, built, event = built_dataset(tmp_path)
    assert load_dataset(data, event).models  # untouched: it loads
    manifest = Path(built.manifest)
    original = manifest.read_text()
    manifest.write_text(original.replace('"models": [', '"models": ["local", '))
    with pytest.raises(UserError, match="does not hash to the dataset's id"):
        load_dataset(data, event)
    manifest.write_text(original)
    examples = Path(built.path)
    examples.unlink()
    os.mkfifo(examples)
    with pytest.raises(UserError, match="is not a regular file"):
        load_dataset(data, event)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_tampering_with_each_file_of_a_dataset_in_turn(tmp_path: Path, damage: str) -> None:
    """Issue 25: both files of a dataset are checked (the examples by their sha256, the manifest
    by the id it hashes to) and refused in one line when changed, cut or gone."""
    from automem.engine.training.inputs import load_dataset

    from ..support.training import tamper

    data, built, event = built_dataset(tmp_path)
    for path in (Path(built.path), Path(built.manifest)):
        original = path.read_bytes()
        tamper(path, damage)
        with pytest.raises(UserError) as refused:
            load_dataset(data, event)
        assert "\n" not in str(refused.value)
        path.write_bytes(original)
    assert load_dataset(data, event).models
