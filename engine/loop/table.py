"""A loop's table, from its stream alone: one row per iteration, as `automem loop status` shows it.

A row is also the `--json` document's shape: figures keep the dotted names the events
record them under (`records.figures`), since scripts read them.
"""

from __future__ import annotations

import msgspec

from automem.engine.log.port import EventLog
from automem.engine.loop.records import done, figures
from automem.schemas.errors import UserError
from automem.schemas.events import LoopIterationFinished, LoopIterationStarted, LoopStageFailed, LoopStarted
from automem.schemas.streams import loop_stream


class Row(msgspec.Struct, kw_only=True):
    """One iteration: structure and accepted, model and promoted, selection and held-out figures."""

    iteration: int
    status: str = "running"  # finished, running or "failed at STAGE"
    stages: list[str] = []  # done, in order
    structure: str = ""
    candidate_structure: str = ""
    accepted: bool | None = None  # None: loop 1 did not decide in it
    proposal: str = ""  # the reviewer's: valid, invalid (a small model's usual answer, counted not hidden) or ""
    decision: str = ""
    model: str = ""
    candidate_model: str = ""
    promoted: bool | None = None
    dataset: str = ""
    loop1: dict[str, float] = {}  # loop 1's candidate against its parent
    selection: dict[str, float] = {}  # loop 2's candidate against the incumbent, on the selection seeds
    heldout: dict[str, float] = {}  # the report stage
    baseline: dict[str, float] = {}  # iteration 1's baseline stage
    compare: dict[str, float] = {}  # iteration 1's comparison arm: a baseline agent on the held-out seeds
    compare_agent: str = ""
    failure: str = ""


class LoopStatus(msgspec.Struct, kw_only=True):
    """`automem loop status --json`."""

    loop: str
    settings: dict[str, str]
    iterations: list[Row]
    loops: list[str]  # every loop in the store, in the order they were started


def table(events: list[object]) -> list[Row]:
    """One row per iteration begun."""
    rows = []
    for start in (e for e in events if isinstance(e, LoopIterationStarted)):
        it = start.iteration
        d = done(events, it)
        finished = any(isinstance(e, LoopIterationFinished) and e.iteration == it for e in events)
        failed = [e for e in events if isinstance(e, LoopStageFailed) and e.iteration == it and e.stage not in d.stages]
        l1, ev = d.loop1, d.evaluate
        rows.append(Row(
            iteration=it, status="finished" if finished else (f"failed at {failed[-1].stage}" if failed else "running"),
            stages=list(d.stages),
            structure=l1.structure if l1 else start.structure,
            candidate_structure=l1.candidate if l1 else "",
            accepted=l1.accepted if l1 else None,
            proposal=("valid" if l1.proposal.valid else "invalid") if l1 else "",
            decision=l1.proposal.reason if l1 else "",
            model=ev.model if ev else start.model,
            candidate_model=d.train.model_version if d.train else "",
            promoted=ev.promoted if ev else None,
            dataset=d.dataset.dataset if d.dataset else "",
            loop1=figures(l1), selection=figures(ev), heldout=figures(d.report), baseline=figures(d.baseline),
            compare=figures(d.compare), compare_agent=d.compare.agent if d.compare else "",
            failure=failed[-1].reason if failed else ""))
    return rows


def loop_events(log: EventLog, loop: str) -> list[object]:
    """The events of `loop/<loop>`, oldest first."""
    return [r.event for r in log.read_stream(loop_stream(loop))]


def loops(log: EventLog) -> list[str]:
    """The loop ids in the store, in the order they were started."""
    found = []
    for stream in log.streams("loop"):
        first = next(iter(log.read_stream(stream)), None)
        if first is not None and isinstance(first.event, LoopStarted):
            found.append((first.offset, first.event.loop))
    return [name for _, name in sorted(found)]


def status(log: EventLog, loop: str | None) -> LoopStatus:
    """The loop's settings and its table (the loop started last, without an id)."""
    known = loops(log)
    if loop is None:
        if not known:
            raise UserError("no loop in this store: `automem loop run` starts one")
        loop = known[-1]
    events = loop_events(log, loop)
    if not events or not isinstance(events[0], LoopStarted):
        raise UserError(f"no loop {loop!r} in this store: known loops are {', '.join(known) or 'none'}")
    return LoopStatus(loop=loop, settings=events[0].settings, iterations=table(events), loops=known)
