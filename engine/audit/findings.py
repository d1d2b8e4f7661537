"""Which writes on the provenance graph were wrong, and how. Pure.

  contradicted  a claim the facts of its own moment contradict (the step it names, or
                the world as it was when the line was written)
  stale         true when written, false by the time a read on the chain saw it
  lost          a true line a later write removed while it was still true when the chain read the file
  duplicate     a line written again that was already there, in a file the chain read truncated
"""

from __future__ import annotations

import msgspec

from automem.schemas.structure import MemoryLimits

from .claims import Claim, Verdict, check, extract
from .provenance import Node, Op, Trace, feeders
from .result import Mistake


class Finding(msgspec.Struct, frozen=True):
    write: Op
    kind: str
    evidence: str
    via: int | None = None  # the chain read it is reported through (lost lines)


def _verdict(trace: Trace, claim: Claim, step: int) -> Verdict | None:
    taken = trace.steps.get(step)
    return None if taken is None else check(claim, taken.facts)


def _when(claim: Claim, written_at: int) -> int:
    return claim.step if claim.step is not None else written_at - 1


def _judge_write(trace: Trace, w: Op, readers: list[Op]) -> Finding | None:
    e = w.event
    for claim in extract("\n".join(w.added)):
        at = _when(claim, e.step)
        v = _verdict(trace, claim, at)
        if v is not None and v.holds is False:
            return Finding(w, "contradicted", f"{e.op.path} got {claim.text.strip()!r} at step {e.step}; "
                                              f"the facts of step {at} say {v.truth}")
        if v is None or claim.step is not None:
            continue
        for r in readers:
            later = _verdict(trace, claim, r.event.step - 1)
            if later is not None and later.holds is False:
                return Finding(w, "stale", f"{claim.text.strip()!r} was true at step {at} but by step {r.event.step - 1} "
                                           f"{later.truth}; {e.op.path} was not updated before it was read at step {r.event.step}")
    return None


def _stripped(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines()}


def _truncated(trace: Trace, read: Op, limits: MemoryLimits) -> bool:
    """Whether what `read` returned was cut short by the structure's limits."""
    kind = read.event.op.kind
    sizes = [len(trace.contents.get(k, "")) for k in read.event.read_versions.items()]
    if kind == "read":
        return any(size > limits.max_read_chars for size in sizes)
    if kind == "search" and read.event.op.args:
        needle = read.event.op.args[0].lower()
        hits = sum(needle in line.lower() for k in read.event.read_versions.items()
                   for line in trace.contents.get(k, "").splitlines())
        return hits > limits.max_search_hits
    return False


def _lost(trace: Trace, read: Op) -> list[Finding]:
    """True lines removed from a file before `read` looked at it, and still true then."""
    out = []
    for name, version in read.event.read_versions.items():
        now = trace.contents.get((name, version), "")
        for w in trace.writes.get(name, ()):
            if w.index >= read.index or not w.removed:
                continue
            for claim in extract("\n".join(line for line in w.removed if line not in now)):
                then = _verdict(trace, claim, _when(claim, w.event.step))
                still = _verdict(trace, claim, read.event.step - 1 if claim.step is None else claim.step)
                if then is not None and then.holds and still is not None and still.holds:
                    out.append(Finding(w, "lost", f"{w.event.op.kind} at step {w.event.step} removed "
                                                  f"{claim.text.strip()!r} from {name}, still true ({still.truth}) "
                                                  f"when the file was read at step {read.event.step}", read.index))
                    break
    return out


def judge(trace: Trace, pulled: dict[Node, Node | None], limits: MemoryLimits) -> list[Finding]:
    """Every wrong write reachable from the failing decisions, earliest first."""
    reads = [trace.ops[n[1]] for n in pulled if n[0] == "r"]
    readers: dict[int, list[Op]] = {}
    for r in reads:
        for w in feeders(trace, r):
            readers.setdefault(w.index, []).append(r)
    found: list[Finding] = []
    for node in pulled:
        if node[0] != "w":
            continue
        w = trace.ops[node[1]]
        finding = _judge_write(trace, w, readers.get(w.index, []))
        if finding is None and w.event.op.kind in ("append", "upsert") and w.added and w.added[-1] in _stripped(w.before):
            cut = [r for r in readers.get(w.index, []) if _truncated(trace, r, limits)]
            if cut:
                finding = Finding(w, "duplicate", f"{w.added[-1]!r} was already in {w.event.op.path}; the file was "
                                                  f"cut short when read at step {cut[0].event.step}")
        if finding is not None:
            found.append(finding)
    for r in reads:
        found += _lost(trace, r)
    return sorted(found, key=lambda f: f.write.index)


def mistake(trace: Trace, f: Finding) -> Mistake:
    e = f.write.event
    index = sum(1 for o in trace.phases[(e.step, e.phase)] if o.event.turn == e.turn and o.index < f.write.index)
    return Mistake(step=e.step, phase=e.phase, turn=e.turn, op=e.op.kind, file=e.op.path,
                   content="|".join(e.op.args), kind=f.kind, evidence=f.evidence,
                   version=e.written_versions.get(e.op.path, ""), index=index)
