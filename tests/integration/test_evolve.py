"""Loop 1 with scripted reviewers: look-ups answered, proposals validated (one repair),
candidates accepted only on strict improvement over their parent on the selection seeds,
held-out seeds reported, every step an event, and `--structure auto` following it."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from automem.engine.episodes.replay import replay
from automem.engine.evolve.history import history
from automem.engine.evolve.loop import evolve
from automem.engine.evolve.review import lookups, proposal
from automem.engine.evolve.validate import check_proposal
from automem.engine.log import LmdbLog
from automem.engine.policy.spec import make_policy
from automem.engine.rollout.request import RunRequest
from automem.engine.structure.registry import resolve_structure
from automem.engine.structure.seeds import v0
from automem.schemas.errors import UserError
from automem.schemas.structure import encode_structure

from ..support.cli import assert_user_error, automem

PARENT = v0("crafter")


def _doc(**changes: object) -> str:
    return encode_structure(msgspec.structs.replace(PARENT, **changes)).decode()


def _answers(path: Path, answers: list[str]) -> str:
    path.write_text("".join(json.dumps({"text": a}) + "\n" for a in answers))
    return f"file:{path}"


@pytest.fixture
def agent(tmp_path: Path) -> str:
    """An agent that never commits an action: what it does is the structure's fallback action."""
    return _answers(tmp_path / "agent.jsonl", ["<|DONE|>"] * 50_000)


def test_proposals_parse_with_tags_inside_the_json() -> None:
    answer = "I looked.\n<|EPISODES|><|END|> and <|SEARCH|>tree<|END|>"
    assert [(x.tool, x.args) for x in lookups(answer)] == [("EPISODES", ()), ("SEARCH", ("tree",))]
    analysis, doc = proposal(f"Fewer turns help.\n<|PROPOSAL|>\n{_doc(max_log_turns=2)}\ntrailing prose") or ("", b"")
    assert analysis == "Fewer turns help." and json.loads(doc)["max_log_turns"] == 2  # its prompts hold <|END|>
    assert lookups(f"<|PROPOSAL|>{_doc()}") == []


@pytest.mark.parametrize(("document", "reason"), [
    ("not json at all", "not JSON"),
    ('{"env": "crafter"}', "not a structure"),
    (_doc(commands=tuple(c for c in PARENT.commands if c.kind not in ("append", "write", "create"))), "invalid structure"),
    (_doc(log_system=PARENT.log_system + " Be brief."), "wording only"),
    (_doc(env="nethack"), "not 'crafter'"),
    ("{" + " " * 300_000 + "}", "over the"),
])
def test_invalid_proposals_are_refused_with_the_reason(document: str, reason: str) -> None:
    with pytest.raises(UserError, match=reason):
        check_proposal(document.encode(), PARENT)


@pytest.mark.slow
def test_a_better_candidate_is_accepted_a_worse_one_rejected_and_auto_follows(tmp_path: Path, agent: str) -> None:
    data = tmp_path / "d"
    reviewer = make_policy(_answers(tmp_path / "reviewer.jsonl", [
        "Let me look first. <|EPISODES|><|END|><|SEARCH|>DONE<|END|>",
        f"The agent commits no action, so the fallback decides everything: make it act.\n<|PROPOSAL|>{_doc(fallback_action='Do')}",
        f"Now try walking instead.\n<|PROPOSAL|>{_doc(fallback_action='Move Left')}",
        "nothing useful, and no proposal either",  # the third iteration: no proposal, then a repair that is still invalid
        "<|PROPOSAL|>not json",
        "<|PROPOSAL|>still not json",
    ]))
    req = RunRequest(env="crafter", task=None, episodes=2, max_steps=40, seed=0, policy=agent, structure="v0")
    with LmdbLog(data) as log:
        result = evolve(log, data, log, req, reviewer, 3, [0, 1], [10, 11, 12], [20, 21])
        first, second, third = result.iterations
        assert first.valid and first.accepted, first.reason
        assert first.select["candidate"]["mean_progression"] > first.select["parent"]["mean_progression"]
        assert second.valid and not second.accepted and second.parent == first.candidate
        assert "no strict improvement" in second.reason
        assert not third.valid and "after one repair" in third.reason and "not JSON" in third.reason
        assert result.accepted == [first.candidate] and result.current == first.candidate
        assert {len(it.report) for it in (first, second)} == {2}  # the held-out seeds, reported for both
        statuses = {e.version: e.status for e in history(log, "crafter")}
        assert statuses[first.candidate] == "accepted" and statuses[second.candidate] == "rejected"
        assert [e for e in history(log, "crafter") if e.version == first.candidate][0].parent == resolve_structure(
            log, "crafter", "v0", agent)[1]
        assert resolve_structure(log, "crafter", "auto", agent)[1] == first.candidate  # rollouts now use it
        parent_episode = first.select["parent"]["episodes"][0]
        assert replay(log, parent_episode).divergence is None  # an episode of the older structure still replays


@pytest.mark.slow
def test_overlapping_seed_sets_and_a_dead_reviewer_are_refused(tmp_path: Path, agent: str) -> None:
    args = ["evolve", "--env", "crafter", "--policy", agent, "--max-steps", "5", "--episodes", "2",
            "--data", str(tmp_path / "d")]
    assert_user_error(automem(*args, "--reviewer", "random", "--select-seeds", "1-3", "--report-seeds", "5-6",
                              cwd=tmp_path), "training and selection seeds overlap")
    assert_user_error(automem(*args, "--reviewer", "openai:m@http://127.0.0.1:9", "--select-seeds", "10-11",
                              "--report-seeds", "20-21", cwd=tmp_path), "cannot reach model server")


@pytest.mark.slow
def test_a_real_small_model_as_reviewer_is_handled_and_reported(tmp_path: Path, agent: str,
                                                               served_model: tuple[str, str]) -> None:
    """SmolLM2 behind `transformers serve` will not write a valid structure: that is recorded, nothing accepted."""
    from automem.engine.evolve.loop import Budget

    model, url = served_model
    data = tmp_path / "d"
    req = RunRequest(env="crafter", task=None, episodes=1, max_steps=5, seed=0, policy=agent, structure="v0-small")
    with LmdbLog(data) as log:
        result = evolve(log, data, log, req, make_policy(f"openai:{model}@{url}"), 1, [0], [10], [20],
                        Budget(turns=1, tokens=24))
        [only] = result.iterations
        assert not only.valid and not only.accepted and only.reason and result.accepted == []
        assert result.current == resolve_structure(log, "crafter", "v0-small", agent)[1]
        assert [e.status for e in history(log, "crafter")] == ["proposed"]  # the parent only: nothing new accepted


@pytest.mark.slow
def test_a_selection_run_that_fails_accepts_nothing(tmp_path: Path) -> None:
    """An agent whose answers run out ends its episodes with a model error: nothing can be decided."""
    data = tmp_path / "d"
    agent = _answers(tmp_path / "short.jsonl", ["<|DONE|>"] * 8)
    reviewer = make_policy(_answers(tmp_path / "reviewer.jsonl", [f"<|PROPOSAL|>{_doc(fallback_action='Do')}"]))
    req = RunRequest(env="crafter", task=None, episodes=1, max_steps=5, seed=0, policy=agent, structure="v0")
    with LmdbLog(data) as log:
        result = evolve(log, data, log, req, reviewer, 1, [0], [10], [20])
        [only] = result.iterations
        assert only.valid and not only.accepted and "did not finish cleanly" in only.reason
        assert result.accepted == [] and result.current == only.parent
        assert {e.version: e.status for e in history(log, "crafter")}[only.candidate] == "rejected"


def test_hostile_reviewer_answers_are_refused_or_answered_never_raised() -> None:
    from automem.engine.evolve.review import Lookup, answer_lookups

    deep = "<|PROPOSAL|>" + "[" * 100_000 + "]" * 100_000
    found = proposal(deep)
    assert found is not None
    with pytest.raises(UserError):
        check_proposal(found[1], PARENT)

    def out_of_range(*_: str) -> str:
        raise UserError("steps 3..1 are out of range")

    text = answer_lookups([Lookup("STEPS", ("ep", "3-1"))] * 10, {"STEPS": out_of_range})
    assert text.count("ERROR: STEPS ep|3-1: steps 3..1 are out of range") == 6 and "only the first 6" in text
