"""Hostile reviewer answers (issue 25, 1): nesting, encodings and junk never crash loop 1;
a loop 1 stage that fails the same way twice becomes a failed proposal instead of a retry
forever."""

from __future__ import annotations

import json
import random
from pathlib import Path

import msgspec
import pytest

from automem.engine.evolve.review import PROPOSAL, proposal
from automem.engine.evolve.validate import check_proposal
from automem.engine.log import LmdbLog
from automem.engine.policy.base import storable
from automem.engine.structure.seeds import v0
from automem.schemas.errors import UserError
from automem.schemas.events import StructureProposed, StructureRejected
from automem.schemas.structure import encode_structure

PARENT = v0("crafter", small=True)
VALID = json.loads(encode_structure(msgspec.structs.replace(PARENT, fallback_action="Do")))


def _deep(levels: int) -> str:
    """A valid proposal with one extra field nested `levels` deep (under 5 KB at 1000)."""
    return json.dumps(VALID)[:-1] + ', "x": ' + "[" * levels + "]" * levels + "}"


def hostile(rng: random.Random) -> str:
    """One generated reviewer answer: tags, fragments, nesting, surrogates, numbers past any bound."""
    parts = [rng.choice(["Analysis.", "\ud800", "\udfff lone", "<|STEPS|>x|1-2<|END|>", "<|SEARCH|>\x00<|END|>",
                         "{", "}", "[" * rng.randrange(1, 3000), "<|PROPOSAL|>", "NaN", "1e999", "-0", "\u202e",
                         json.dumps({**VALID, rng.choice(list(VALID)): rng.choice([None, -1, 10**30, "x" * 5000,
                                                                                   [[]] * 50, {"a": {}}])}),
                         _deep(rng.randrange(1, 2000)), "\"" * rng.randrange(1, 50)])
             for _ in range(rng.randrange(1, 6))]
    return "".join(parts)


def test_generated_reviewer_answers_never_crash_the_proposal_path() -> None:
    rng = random.Random(25)
    outcomes = {"refused": 0, "valid": 0, "no proposal": 0}
    for _ in range(2000):
        answer = storable(hostile(rng))
        answer.encode("utf-8")  # every answer is storable once cleaned
        found = proposal(answer)
        if found is None:
            outcomes["no proposal"] += 1
            continue
        try:
            check_proposal(found[1], PARENT)
            outcomes["valid"] += 1
        except UserError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100 and outcomes["no proposal"] > 100 and sum(outcomes.values()) == 2000


def test_deep_nesting_and_lone_surrogates_are_refused_in_one_line() -> None:
    found = proposal("analysis " + PROPOSAL + _deep(1000))
    assert found is not None and len(found[1]) < 5000
    with pytest.raises(UserError, match="nests too deeply"):
        check_proposal(found[1], PARENT)
    cleaned = storable("bad \ud800 text " + PROPOSAL + json.dumps(VALID))
    assert cleaned.encode("utf-8") and "\ud800" not in cleaned and cleaned.startswith("bad ? text")
    assert check_proposal(proposal(cleaned)[1], PARENT).fallback_action == "Do"


LOOKUPS = ("<|EPISODES|><|END|>", "<|STEPS|>{ep}|-5-99999999999<|END|>", "<|STEPS|>../../etc/passwd|1-2<|END|>",
           "<|MEMORY|>x|-1<|END|>", "<|MEMORY|>x|1e9<|END|>", "<|AUDIT|>\x00<|END|>", "<|SEARCH|>" + "(" * 200 + "<|END|>",
           "<|SEARCH|><|END|>", "<|STEPS|>x|3-1<|END|>", "<|MEMORY|>/etc|0<|END|>", "<|SEARCH|>" + "a" * 100_000 + "<|END|>")


def answers_file(path: Path, seed: int, count: int) -> Path:
    """`count` generated answers as a `file:` reviewer's lines: hostile proposals, or look-ups with
    hostile arguments. JSON here carries no lone surrogate (msgspec refuses one), so those become "?"."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(count):
            answer = hostile(rng) if rng.random() < 0.05 else "".join(rng.choice(LOOKUPS)
                                                                   for _ in range(rng.randrange(1, 9)))
            f.write(json.dumps({"text": answer.encode("utf-8", "replace").decode("utf-8")}) + "\n")
    return path


@pytest.mark.slow
def test_thousands_of_answers_through_a_file_reviewer_crash_nothing_and_every_episode_replays(tmp_path: Path) -> None:
    """6,000 generated answers through `automem evolve --reviewer file:`, each file asked until it
    runs out: every run ends 0, every episode replays, nothing is written outside the store."""
    from ..support.cli import automem

    data = tmp_path / "d"
    files = [answers_file(tmp_path / f"answers{seed}.jsonl", seed, 2000) for seed in (1, 2, 3)]
    for answers in files:
        proc = automem("evolve", "--env", "crafter", "--policy", "random", "--structure", "v0-small",
                       "--reviewer", f"file:{answers.name}", "--reviewer-turns", "50", "--iterations", "100",
                       "--episodes", "1", "--max-steps", "2", "--select-seeds", "10", "--report-seeds", "20",
                       "--data", str(data), "--json", cwd=tmp_path)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        iterations = json.loads(proc.stdout)["iterations"]
        assert "file policy exhausted" in iterations[-1]["reason"]  # all 2,000 asked
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["d", *(f.name for f in files)])
    episodes = json.loads(automem("episodes", "--data", str(data), "--json", cwd=tmp_path).stdout)["episodes"]
    assert episodes
    for episode in episodes:
        proc = automem("replay", episode["id"], "--data", str(data), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert automem("store", "check", "--data", str(data), cwd=tmp_path).returncode == 0


@pytest.mark.slow
def test_evolve_records_a_hostile_proposal_and_goes_on(tmp_path: Path) -> None:
    from automem.engine.evolve.loop import Budget, evolve
    from automem.engine.policy.base import Completion, PolicyRequest
    from automem.engine.rollout.request import RunRequest
    from automem.engine.structure.registry import resolve_structure

    class Hostile:
        """Lone surrogates, which a `file:` reviewer cannot carry (its JSON lines refuse them): a fake for that fault alone."""

        name = "hostile"

        def __init__(self) -> None:
            self.answers = ["\ud800 look " + PROPOSAL + _deep(1000), "still \udfff " + PROPOSAL + _deep(3000),
                            "act \ud800 when unsure " + PROPOSAL + json.dumps(VALID)]

        def complete(self, request: PolicyRequest) -> Completion:
            return Completion(text=self.answers.pop(0), model=self.name)

    req = RunRequest(env="crafter", task=None, episodes=1, max_steps=2, seed=0, policy="random", structure="v0-small")
    with LmdbLog(tmp_path / "d") as log:
        result = evolve(log, tmp_path / "d", log, req, Hostile(), 2, [0], [10], [20],  # type: ignore[arg-type]
                        Budget(turns=1, tokens=64))
        first, second = result.iterations
        assert not first.valid and "nests too deeply" in first.reason
        assert first.parent == resolve_structure(log, "crafter", "v0-small", "random")[1]
        events = [r.event for r in log.read_stream("structure/crafter")]
        assert [e.reason for e in events if isinstance(e, StructureRejected)][0] == first.reason
        # the valid proposal after a lone surrogate is stored, its rationale as valid UTF-8
        assert second.valid and second.candidate
        proposed = [e for e in events if isinstance(e, StructureProposed) and e.version == second.candidate]
        assert proposed and proposed[0].rationale == "act ? when unsure"


@pytest.mark.slow
def test_a_loop_1_stage_that_crashes_the_same_way_twice_becomes_a_failed_proposal(tmp_path: Path) -> None:
    from automem.engine.loop import Settings
    from automem.engine.loop.stages import STAGES, Context
    from automem.engine.rollout.players import Local
    from automem.engine.structure.registry import resolve_structure
    from automem.schemas.events import LoopIterationStarted, LoopStageFailed

    def reviewer() -> object:
        raise AssertionError("the reviewer is not asked a third time")

    s = Settings(env="crafter", task="default", train_seeds=(1,), select_seeds=(2,), heldout_seeds=(3,), max_steps=2,
                 loops=(1,), policy="random", structure="v0-small", reviewer="file:x")
    with LmdbLog(tmp_path / "d") as log:
        version = resolve_structure(log, "crafter", "v0-small", "random")[1]
        failed = LoopStageFailed(iteration=1, stage="loop1", reason="maximum recursion depth exceeded",
                                 crash="RecursionError")
        down = LoopStageFailed(iteration=1, stage="loop1", reason="the reviewer server is down")
        started = LoopIterationStarted(iteration=1, structure=version)
        retried = Context(log, tmp_path / "d", None, s, "L", reviewer, [started, down, down], Local(),  # type: ignore[arg-type]
                          None)
        with pytest.raises(AssertionError, match="not asked a third time"):  # a server down is asked again
            STAGES["loop1"](retried, 1, {"structure": log.head("structure/crafter")})
        events = [started, down, down, down, failed, failed]
        c = Context(log, tmp_path / "d", None, s, "L", reviewer, events, Local(), None)  # type: ignore[arg-type]
        decided = STAGES["loop1"](c, 1, {"structure": log.head("structure/crafter")})
    assert not decided.accepted and decided.structure == version and not decided.proposal.valid
    assert decided.proposal.reason == "loop 1 failed the same way 2 times: maximum recursion depth exceeded"


def test_a_proposal_that_renders_huge_prompts_is_refused() -> None:
    """Issue 25, 4: about 72 KB of structure rendered system prompts of about 50 MB, sent on every call."""
    bloated = {**VALID, "log_system": "{commands}" * 1600, "plan_system": VALID["plan_system"] + "{commands}" * 1600}
    document = json.dumps(bloated).encode()
    assert len(document) < 72 * 1024
    with pytest.raises(UserError, match=r"log_system renders to about \d+ characters .* over 32768"):
        check_proposal(document, PARENT)


def test_a_proposal_whose_requests_could_outgrow_any_context_is_refused() -> None:
    """Issue 25, 4, per request (each turn sends every earlier turn's answer and results again)."""
    many = {**VALID, "max_plan_turns": 20, "max_tokens": 4096}
    with pytest.raises(UserError, match=r"a plan request can reach about \d+ characters .* over 1048576"):
        check_proposal(json.dumps(many).encode(), PARENT)
    assert check_proposal(json.dumps({**many, "max_plan_turns": 12, "max_tokens": 512}).encode(), PARENT).max_plan_turns == 12


def test_one_turn_s_results_are_cut_for_the_next_request() -> None:
    from automem.engine.agent.prompts import MAX_FEEDBACK, turn_feedback

    reads = [f"[READ notes.txt] {'x' * 4000}" for _ in range(700)]  # 700 reads in one answer of 4,096 tokens
    text = turn_feedback(reads, (), False, "plan")
    assert len(text) < MAX_FEEDBACK + 100 and text.endswith("fewer commands per answer)")
    assert turn_feedback(reads[:2], (), False, "plan") == "\n".join(reads[:2])
