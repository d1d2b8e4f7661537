"""An env's structures as its stream tells them: proposed, evaluated, accepted or rejected."""

from __future__ import annotations

import msgspec

from automem.engine.log.port import EventLog
from automem.engine.structure.registry import read_structures
from automem.schemas.events import StructureEvaluated


class Entry(msgspec.Struct, kw_only=True):
    """`automem structure list --json`: a stored structure named, not spelled out."""

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
    return [Entry(version=s.version, name=s.structure.name, parent=s.parent, rationale=s.rationale,
                  reviewer=s.reviewer, status=s.status, reason=s.reason, model_class=s.model_class,
                  evaluations=s.evaluations)
            for s in read_structures(log, env).by_version.values()]
