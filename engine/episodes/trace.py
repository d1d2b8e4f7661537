"""An episode's trace, step by step, from its log alone: the action as the model wrote it
and as it ran, the reward, the model calls by phase and turn, the memory operations with
the exact text each showed, and the outcomes. The LOG phase of step N records the outcome
of step N-1's action; PLAN chooses step N's action; the seeded files are step 0's `init`
ops, derived files the `derived` ops after each step, and a line-cap trim the `cap` op
right after the write it follows.

The log keeps only a digest of each op's result, so the text the model was shown is
re-derived by folding the reducer over the episode's ops under the episode's own limits,
exactly as the agent did; a result whose digest then differs from the recorded one (a
structure missing from this store) is given as None rather than as a guess. Scores are
the caller's to attach (`automem show` attaches the rule scores; the judge grades
without them), so this core depends on no scorer.
"""

from __future__ import annotations

from typing import Mapping

import msgspec

from automem.engine.agent.prompts import text_digest
from automem.engine.episodes.read import EpisodeRecord
from automem.engine.episodes.timeline import steps_taken
from automem.engine.memory import EMPTY, apply
from automem.schemas.errors import UserError
from automem.schemas.events import DecisionScored, LLMCalled, MemoryOpApplied, OutcomeObserved, StepTaken


class Call(msgspec.Struct, kw_only=True):
    phase: str
    turn: int
    role: str
    model: str
    response: str
    error: str | None
    score: float | None = None  # the decision's rule score (of the result's scorer), if scored


class Op(msgspec.Struct, kw_only=True):
    phase: str
    turn: int
    op: str
    file: str
    args: tuple[str, ...]
    ok: bool
    result: str | None  # the text the model was shown; None: not re-derivable from this store
    index: int | None = None  # its place in the answer
    score: float | None = None  # the command's rule score, if scored


class Outcome(msgspec.Struct, kw_only=True):
    kind: str  # achievement | level | damage | death | ...
    detail: str
    value: float


class ProbeShown(msgspec.Struct, kw_only=True):
    """A memory probe asked as after this step (engine/probes): the question, the reader's
    lookups and answer, the key and the verdict, in one arm of one probe run."""

    run: str
    reader: str
    arm: str  # memory | control
    kind: str
    about: int  # the step whose facts hold the key
    question: str
    key: str
    lookups: list[str] = []
    answer: str = ""
    correct: bool = False
    error: str | None = None


class Step(msgspec.Struct, kw_only=True):
    step: int
    raw_action: str = ""  # as the model wrote it ("": it committed none, the fallback ran)
    action: str = ""  # as the env executed it
    valid: bool = True
    reward: float = 0.0
    done: bool = False
    calls: list[Call] = []
    ops: list[Op] = []
    outcomes: list[Outcome] = []
    probes: list[ProbeShown] = []


class ShowResult(msgspec.Struct, kw_only=True):
    episode: str
    env: str
    task: str
    steps: list[Step]
    scorer: str | None = None  # the scorer version whose scores are shown (None: not scored)


def _range(episode: str, final: int, start: int | None, end: int | None) -> tuple[int, int]:
    if final < 0:
        raise UserError(f"episode {episode} took no step: there is no trace to show")
    lo, hi = 0 if start is None else start, final if end is None else end
    if not 0 <= lo <= hi <= final:
        raise UserError(f"steps {lo}..{hi} are out of range for {episode}: it has {steps_taken(episode, final)} "
                        "(--from STEP and --to STEP within them, --from not after --to)")
    return lo, hi


def trace(record: EpisodeRecord, start: int | None = None, end: int | None = None,
          scores: Mapping[tuple, DecisionScored] | None = None, scorer: str | None = None) -> ShowResult:
    """Steps `start`..`end` (default: all) of a recorded episode, with `scores` (keyed
    (step, phase, turn, index), of the scorer version `scorer`) where it has them."""
    episode, taken = record.episode, record.steps
    lo, hi = _range(episode, taken[-1].step if taken else -1, start, end)
    steps = {n: Step(step=n) for n in range(lo, hi + 1)}
    found_scores = scores or {}

    def scored(ev: LLMCalled | MemoryOpApplied, index: int | None) -> float | None:
        found = found_scores.get((ev.step, ev.phase, ev.turn, index))
        return None if found is None else found.score

    limits, engine = record.limits, record.engine_limits  # the model's commands; the seeded and derived files
    memory = EMPTY
    for ev in record.events:
        n = getattr(ev, "step", None)
        if n is None:
            continue
        if n > hi:
            break
        if isinstance(ev, MemoryOpApplied):  # every op, reads too: results depend on the state
            memory, result = apply(memory, ev.op, engine if ev.phase in ("init", "derived") else limits)
            if n >= lo:
                text = result.text if text_digest(result.text) == ev.result_digest else None
                steps[n].ops.append(Op(phase=ev.phase, turn=ev.turn, op=ev.op.kind, file=ev.op.path,
                                       args=ev.op.args, ok=ev.ok, result=text, index=ev.index,
                                       score=scored(ev, ev.index) if ev.index is not None else None))
        elif n < lo:
            continue
        elif isinstance(ev, LLMCalled):
            steps[n].calls.append(Call(phase=ev.phase, turn=ev.turn, role=ev.role, model=ev.model,
                                       response=ev.response, error=ev.error, score=scored(ev, None)))
        elif isinstance(ev, StepTaken):
            s = steps[n]
            s.raw_action, s.action, s.valid, s.reward, s.done = ev.raw_action, ev.action, ev.valid, ev.reward, ev.done
        elif isinstance(ev, OutcomeObserved):
            steps[n].outcomes.append(Outcome(kind=ev.kind, detail=ev.detail, value=ev.value))
    return ShowResult(episode=episode, env=record.start.env, task=record.start.task, steps=list(steps.values()),
                      scorer=scorer)
