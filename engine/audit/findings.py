"""Which write on the provenance graph was wrong first, and how. Pure.

  contradicted  a claim the facts of its own moment contradict (the step it names, or
                the world as it was when the line was written; never a later world)
  stale         true when written, false by the time a read on the chain showed it
  lost          a true line a later write removed, still true (and nowhere else in the
                file) when the chain read the file
  duplicate     a line written again that was already there, in a file the chain read cut short
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterator

import msgspec

from automem.engine.audit.claims import Claim, Verdict, check, extract
from automem.engine.audit.provenance import Node, Op, Trace, lines_of
from automem.engine.audit.result import Mistake
from automem.schemas.events import OpRef


class Finding(msgspec.Struct, frozen=True):
    write: Op
    kind: str
    evidence: str
    via: int | None = None  # the chain read it is reported through (lost lines)


@lru_cache(maxsize=65536)
def _claims(line: str) -> tuple[Claim, ...]:
    return tuple(extract(line))


def _claims_of(lines: tuple[str, ...]) -> list[Claim]:
    return [c for line in lines for c in _claims(line)]


def _verdict(trace: Trace, claim: Claim, step: int) -> Verdict | None:
    taken = trace.steps.get(step)
    return None if taken is None else check(claim, taken.facts)


def _when(claim: Claim, written_at: int) -> int:
    """The step whose facts a claim speaks of: the world the model saw at `written_at`, or at the step
    the line names. Prompts and observations call the world after step N-1 "step N" (Crafter's own
    counter too), so "step N: ..." is judged by the facts after step N-1, never by a later world."""
    seen = written_at - 1
    return seen if claim.step is None else min(claim.step - 1, seen)


def checked_claims(trace: Trace, w: Op) -> list[bool]:
    """For each claim a write made that the facts of its moment can check: whether it held."""
    out = []
    for claim in _claims_of(w.added):
        v = _verdict(trace, claim, _when(claim, w.event.step))
        if v is not None and v.holds is not None:
            out.append(v.holds)
    return out


def claim_findings(trace: Trace, w: Op, readers: list[Op]) -> Iterator[Finding]:
    """Each claim of a write that its own moment contradicts, or that a later read showed stale."""
    e = w.event
    for claim in _claims_of(w.added):
        at = _when(claim, e.step)
        v = _verdict(trace, claim, at)
        if v is not None and v.holds is False:
            yield Finding(w, "contradicted", f"{e.op.path} got {claim.text.strip()!r} at step {e.step}; "
                                             f"the facts of step {at} say {v.truth}")
            continue
        if v is None or claim.step is not None:
            continue
        for r in readers:
            later = _verdict(trace, claim, r.event.step - 1)
            if later is not None and later.holds is False:
                yield Finding(w, "stale", f"{claim.text.strip()!r} was true at step {at} but by step {r.event.step - 1} "
                                          f"{later.truth}; {e.op.path} was not updated before it was read at step {r.event.step}")
                break


def duplicate(trace: Trace, w: Op, readers: list[Op]) -> Finding | None:
    """A line written again that was there already, in a file a read then showed cut short."""
    if not w.repeated:
        return None
    cut = next((r for r in readers if r.cut), None)
    if cut is None:
        return None
    return Finding(w, "duplicate", f"{w.added[-1]!r} was already in {w.event.op.path}; the file was "
                                   f"cut short when read at step {cut.event.step}")


def lost(trace: Trace, w: Op, reads: list[Op]) -> Iterator[Finding]:
    """Each true line `w` removed that a later read of the file no longer had, still true then:
    once per line, through the first such read."""
    name = w.event.op.path
    found: set[tuple[str, str, str]] = set()
    for r in reads:
        if r.index <= w.index or name not in r.event.read_versions:
            continue
        now = trace.contents.get((name, r.event.read_versions[name]), "")
        kept = {(c.kind, c.subject, c.value) for c in _claims_of(tuple(lines_of(now)))}
        for claim in _claims_of(tuple(line for line in w.removed if line not in now)):
            if (claim.kind, claim.subject, claim.value) in kept | found:
                continue  # rewritten, not lost; or reported already
            then = _verdict(trace, claim, _when(claim, w.event.step))
            still = _verdict(trace, claim, r.event.step - 1 if claim.step is None else _when(claim, w.event.step))
            if then is not None and then.holds and still is not None and still.holds:
                found.add((claim.kind, claim.subject, claim.value))
                yield Finding(w, "lost", f"{w.event.op.kind} at step {w.event.step} removed {claim.text.strip()!r} "
                                         f"from {name}, still true ({still.truth}) when the file was read at step "
                                         f"{r.event.step}", r.index)


def earliest(trace: Trace, pulled: dict[Node, Node | None]) -> Finding | None:
    """The earliest wrong write reachable from the failing decisions (or lost before a chain read)."""
    reads = [trace.ops[n[1]] for n in pulled if n[0] == "r"]
    readers: dict[int, list[Op]] = {}
    for r in reads:
        for w in r.fed_by:
            readers.setdefault(w, []).append(r)
    on_chain = {n[1] for n in pulled if n[0] == "w"}
    read_files = {name for r in reads for name in r.event.read_versions}
    removers = {w.index for name in read_files for w in trace.writes.get(name, ()) if w.removed}
    for index in sorted(on_chain | removers):
        w = trace.ops[index]
        found = None
        if index in on_chain:
            found = next(claim_findings(trace, w, readers.get(index, [])), None) or duplicate(trace, w, readers.get(index, []))
        if found is None and w.removed:
            found = next(lost(trace, w, reads), None)
        if found is not None:
            return found
    return None


def mistake(trace: Trace, f: Finding, dropped: tuple[OpRef, ...] = ()) -> Mistake:
    """The finding in the CLI's shape; `index` counts the commands of its answer, dropped ones too."""
    e = f.write.event
    index = sum(1 for o in trace.phases[(e.step, e.phase)] if o.event.turn == e.turn and o.index < f.write.index)
    for ref in sorted(dropped, key=lambda r: r.index):
        if (ref.step, ref.phase, ref.turn) == (e.step, e.phase, e.turn) and ref.index <= index:
            index += 1
    return Mistake(step=e.step, phase=e.phase, turn=e.turn, op=e.op.kind, file=e.op.path,
                   content="|".join(e.op.args), kind=f.kind, evidence=f.evidence,
                   version=e.written_versions.get(e.op.path, ""), index=index)
