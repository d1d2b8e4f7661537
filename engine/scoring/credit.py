"""Credit assignment over an episode's provenance graph: the rule scorer. Pure.

A memory decision is one answer of the memory role (a LOG turn, or the lookups of a PLAN
turn); each memory command in it is scored too. Credit flows backward along the audit's
graph, decision <- read <- write, computed in reverse op order so every value it needs
is already known:

  PLAN decision  outcome = A_t, the step's advantage (signal.advantages): what its action
                 led to over the horizon, against the episode's own running baseline
  read           credited with the judgement of the decision it informed: A_t in PLAN;
                 in LOG, the mean of what PLAN reads gave the writes of the phase's later
                 turns (the only answers that saw its result; LOG reads of those writes
                 do not pass their credit on again, so every chain is at most two reads long)
  write          read credit: for each read within `read_window` steps that showed one
                 of its lines, gamma^distance x that read's credit, shared equally among
                 the writes that read showed; a write nobody reads earns nothing
  penalties      an error result; a claim contradicted by its moment's facts, stale when
                 read, a duplicate in a file read cut short, a true line lost (the audit's
                 checks, every verdict rather than the first)
  LOG decision   the read credit of its writes plus the penalties of its commands
  PLAN decision  outcome plus the penalties of its commands

Decisions of step t are final once step t + 2 x read_window + horizon has been taken (or
the episode ended or was abandoned): nothing later can change them, so a consumer can score them while the
episode runs and get exactly what a batch run over the finished log gets.
"""

from __future__ import annotations

import bisect
from typing import Sequence

from automem.engine.audit import findings, provenance
from automem.engine.audit.provenance import Op, Trace
from automem.engine.memory.reducer import READ_KINDS
from automem.engine.memory.snapshot import is_write
from automem.engine.scoring.params import Params
from automem.engine.scoring.signal import advantages, step_signal
from automem.schemas.events import (
    DecisionScored,
    EpisodeAbandoned,
    EpisodeEnded,
    EpisodeStarted,
    LLMCalled,
    OutcomeObserved,
    StepTaken,
)
from automem.schemas.structure import ENGINE_PHASES, MemoryLimits

PHASE_ORDER = {"log": 0, "plan": 1}


def final_through(events: list[object], p: Params) -> int:
    """The last step whose decisions can no longer change (-1: none yet)."""
    steps = [e.step for e in events if isinstance(e, StepTaken)]
    last = steps[-1] if steps else -1
    done = events and isinstance(events[-1], (EpisodeEnded, EpisodeAbandoned))  # nothing more will come
    return last if done else last - p.final_after


def _is_read(op: Op) -> bool:
    return op.event.ok and op.event.op.kind in READ_KINDS


def _penalties(trace: Trace, op: Op, readers: list[Op], file_reads: list[Op], p: Params) -> dict[str, float]:
    """The command's penalties, each kind summed (negative numbers)."""
    out: dict[str, float] = {}
    if not op.event.ok:
        out["error"] = -p.error
        return out
    if not is_write(op.event) or op.event.phase in ENGINE_PHASES:
        return out
    weight = {"contradicted": p.contradicted, "stale": p.stale, "lost": p.lost}
    for f in [*findings.claim_findings(trace, op, readers), *findings.lost(trace, op, file_reads)]:
        out[f.kind] = out.get(f.kind, 0.0) - weight[f.kind]
    if findings.duplicate(trace, op, readers) is not None:
        out["duplicate"] = -p.duplicate
    return out


def _later(reads: list[Op], index: int, last_step: int) -> list[Op]:
    """The reads (in op order) after op `index` up to step `last_step`: the start found by
    bisection, so the scan is only as long as the window."""
    out = []
    for k in range(bisect.bisect_right(reads, index, key=lambda r: r.index), len(reads)):
        if reads[k].event.step > last_step:
            break
        out.append(reads[k])
    return out


def _values(trace: Trace, adv: dict[int, float], p: Params) -> dict[int, dict[str, float]]:
    """Per op index, its components: reads `informed`, writes `read_credit`, and penalties."""
    reads_of: dict[str, list[Op]] = {}
    for op in trace.ops:
        if _is_read(op):
            for name in op.event.read_versions:
                reads_of.setdefault(name, []).append(op)
    credit: dict[int, float] = {}  # the number a later op's credit is built from
    direct: dict[int, float] = {}  # writes: the part of their credit PLAN reads gave (what LOG reads pass on)
    out: dict[int, dict[str, float]] = {}
    for op in reversed(trace.ops):
        e = op.event
        if e.phase in ENGINE_PHASES:  # the engine's ops (seeded, derived, line cap): no decision
            continue
        window = e.step + p.read_window
        readers = [trace.ops[r] for r in trace.readers.get(op.index, ()) if trace.ops[r].event.step <= window]
        comp: dict[str, float] = {}
        if _is_read(op):
            if e.phase == "plan":
                comp["informed"] = adv.get(e.step, 0.0)
            else:  # only what PLAN reads gave those writes: the chain stays two reads long, so it is final in time
                later = [direct[w.index] for w in trace.phases[(e.step, e.phase)]
                         if w.event.turn > e.turn and w.index in direct]
                comp["informed"] = sum(later) / len(later) if later else 0.0
            credit[op.index] = comp["informed"]
        elif e.ok and is_write(e):
            shares = [(r, p.gamma ** (r.event.step - e.step) * credit.get(r.index, 0.0) / len(r.fed_by)) for r in readers]
            comp["read_credit"] = sum(v for _, v in shares)
            credit[op.index] = comp["read_credit"]
            direct[op.index] = sum(v for r, v in shares if r.event.phase == "plan")
        file_reads = _later(reads_of.get(e.op.path, []), op.index, window)
        comp |= _penalties(trace, op, readers, file_reads, p)
        out[op.index] = comp
    return out


def _event(episode: str, key: tuple[int, str, int], index: int | None, kind: str, comp: dict[str, float],
           version: str) -> DecisionScored:
    comp = {k: round(v, 6) for k, v in sorted(comp.items())}
    return DecisionScored(episode=episode, step=key[0], phase=key[1], turn=key[2], score=round(sum(comp.values()), 6),
                          components=comp, rule="rules", index=index, kind=kind, scorer=version)


def memory_calls(events: Sequence[object]) -> list[LLMCalled]:
    """The answers of the memory role: every answer in a one-model episode, the memory model's in a two-model one."""
    start = events[0]
    two = isinstance(start, EpisodeStarted) and "memory" in start.models
    return [e for e in events if isinstance(e, LLMCalled) and e.error is None and (not two or e.role == "memory")]


def score(episode: str, events: list[object], limits: MemoryLimits, p: Params, version: str) -> list[DecisionScored]:
    """The scores of every final memory decision of one episode, in decision order."""
    through = final_through(events, p)
    steps = [e for e in events if isinstance(e, StepTaken)]
    if through < 0:
        return []
    trace = provenance.build(events, limits)
    outcomes = [e for e in events if isinstance(e, OutcomeObserved)]
    adv = advantages(step_signal(steps, outcomes, p), steps[-1].step, p)
    values = _values(trace, adv, p)
    out = []
    for call in memory_calls(events):
        if call.step > through:
            continue
        key = (call.step, call.phase, call.turn)
        ops = [o for o in trace.phases.get((call.step, call.phase), ()) if o.event.turn == call.turn]
        answer: dict[str, float] = {"outcome": adv.get(call.step, 0.0)} if call.phase == "plan" else {"read_credit": 0.0}
        for o in ops:
            for name, v in values.get(o.index, {}).items():
                if name == "read_credit" or (name != "informed" and v):
                    answer[name] = answer.get(name, 0.0) + v
        out.append(_event(episode, key, None, "answer", answer, version))
        out += [_event(episode, key, o.event.index if o.event.index is not None else i, o.event.op.kind,
                       values.get(o.index, {}), version) for i, o in enumerate(ops)]
    out.sort(key=lambda d: (d.step, PHASE_ORDER.get(d.phase, 2), d.turn, -1 if d.index is None else d.index))
    return out
