"""The probes of an episode as `show` lists them at their step, read from its probe stream alone."""

from __future__ import annotations

from automem.engine.episodes.trace import ProbeShown
from automem.engine.log.port import EventLog
from automem.engine.probes.check import correct
from automem.engine.probes.kinds import KINDS
from automem.schemas.events import MemoryOpApplied, ProbeAnswered, ProbeAsked
from automem.schemas.streams import probe_stream


def probes_by_step(log: EventLog, episode: str) -> dict[int, list[ProbeShown]]:
    """Every probe asked of `episode` (every run, both arms), by the step it was asked at."""
    out: dict[int, list[ProbeShown]] = {}
    current: ProbeShown | None = None
    for rec in log.read_stream(probe_stream(episode)):
        ev = rec.event
        if isinstance(ev, ProbeAsked):
            current = ProbeShown(run=ev.run, reader=ev.reader, arm=ev.arm, kind=ev.kind, about=ev.about, question=ev.question, key=ev.key)
            out.setdefault(ev.step, []).append(current)
        elif current is not None and isinstance(ev, MemoryOpApplied):
            current.lookups.append(f"{ev.op.kind.upper()} {'|'.join((ev.op.path, *ev.op.args)).strip('|')}"
                                   + ("" if ev.ok else " (error)"))
        elif current is not None and isinstance(ev, ProbeAnswered):
            current.answer, current.error = ev.answer, ev.error  # the verdict re-checked, never taken on trust
            current.correct = ev.error is None and correct(KINDS[current.kind].answer, current.key, ev.answer)
            current = None
    return out
