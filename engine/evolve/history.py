"""An env's structures as its stream tells them: proposed, evaluated, accepted or rejected."""

from __future__ import annotations

import msgspec

from automem.engine.log.port import EventLog
from automem.schemas.events import (
    StructureAccepted,
    StructureEvaluated,
    StructureProposed,
    StructureRejected,
)
from automem.schemas.streams import structure_stream
from automem.schemas.structure import decode_structure


class Entry(msgspec.Struct, kw_only=True):
    version: str
    name: str
    parent: str | None
    rationale: str
    reviewer: str
    status: str  # proposed | accepted | rejected
    reason: str = ""
    model_class: str = ""
    evaluations: list[StructureEvaluated] = []


def history(log: EventLog, env: str) -> list[Entry]:
    """Every structure of `env` in the order it was proposed, with what became of it."""
    entries: dict[str, Entry] = {}
    for rec in log.read_stream(structure_stream(env)):
        e = rec.event
        if isinstance(e, StructureProposed) and e.version not in entries:
            entries[e.version] = Entry(version=e.version, name=decode_structure(e.document).name, parent=e.parent,
                                       rationale=e.rationale, reviewer=e.reviewer, status="proposed")
        elif isinstance(e, StructureEvaluated) and e.version in entries:
            entries[e.version].evaluations.append(e)
        elif isinstance(e, StructureAccepted) and e.version in entries:
            entries[e.version].status, entries[e.version].model_class = "accepted", e.model_class
        elif isinstance(e, StructureRejected) and e.version in entries:
            entries[e.version].status, entries[e.version].reason = "rejected", e.reason
    return list(entries.values())

