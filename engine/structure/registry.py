"""The structure registry: every structure document in the log by version, what became of
each, the one loop 1 accepted last per model class, and what `--structure NAME` means.

An env's `structure/<env>` stream is read one way only, `read_structures`: every question
about it is answered from that one fold."""

from __future__ import annotations

import msgspec

from automem.engine.log.port import ConflictError, EventLog
from automem.engine.structure.seeds import SEEDS, seed
from automem.schemas.errors import UserError
from automem.schemas.events import (
    StructureAccepted,
    StructureEvaluated,
    StructureProposed,
    StructureRejected,
)
from automem.schemas.streams import structure_stream
from automem.schemas.structure import (
    Structure,
    decode_structure,
    encode_structure,
    structure_version,
)


class StoredStructure(msgspec.Struct, kw_only=True):
    """One structure of an env as its stream tells it: the document, where it came from, what became of it."""

    version: str
    structure: Structure
    parent: str | None
    rationale: str
    reviewer: str
    status: str = "proposed"  # proposed | accepted | rejected
    reason: str = ""
    model_class: str = ""
    evaluations: list[StructureEvaluated] = []


class Structures(msgspec.Struct):
    """An env's structure stream, folded once."""

    by_version: dict[str, StoredStructure]  # in the order they were proposed
    accepted: dict[str, str]  # model class -> the version accepted last for it


def read_structures(log: EventLog, env: str) -> Structures:
    """Every structure of `env` proposed so far, with its evaluations and verdict, and the
    acceptances per model class (the last one wins)."""
    out = Structures({}, {})
    for rec in log.read_stream(structure_stream(env)):
        e = rec.event
        if isinstance(e, StructureProposed) and e.version not in out.by_version:
            out.by_version[e.version] = StoredStructure(version=e.version, structure=decode_structure(e.document),
                                                        parent=e.parent, rationale=e.rationale, reviewer=e.reviewer)
        elif isinstance(e, StructureAccepted):
            out.accepted[e.model_class] = e.version
            if e.version in out.by_version:
                out.by_version[e.version].status, out.by_version[e.version].model_class = "accepted", e.model_class
        elif isinstance(e, StructureEvaluated) and e.version in out.by_version:
            out.by_version[e.version].evaluations.append(e)
        elif isinstance(e, StructureRejected) and e.version in out.by_version:
            out.by_version[e.version].status, out.by_version[e.version].reason = "rejected", e.reason
    return out


def stored_structures(log: EventLog, env: str) -> dict[str, Structure]:
    """The env's structure documents by version."""
    return {version: s.structure for version, s in read_structures(log, env).by_version.items()}


def register_structure(log: EventLog, structure: Structure, rationale: str = "", parent: str | None = None,
                       reviewer: str = "") -> str:
    """Put the structure document in the log once, so replay finds it by version."""
    version = structure_version(structure)
    stream = structure_stream(structure.env)
    while True:
        head = log.head(stream)
        if version in read_structures(log, structure.env).by_version:
            return version
        try:
            log.append(stream, head, [StructureProposed(env=structure.env, version=version, parent=parent,
                                                        document=encode_structure(structure), rationale=rationale,
                                                        reviewer=reviewer)])
            return version
        except ConflictError:
            continue  # another process registered something meanwhile: look again


SMALL = "v0-small-lookup"  # where `auto` starts the embedded model (issue 24: its plans must read memory)


def model_class(policy: str) -> str:
    """Which lineage of structures suits a model: the embedded model's small one, or the full one."""
    return "small" if policy.split(":", 1)[0] == "local" else "full"


def accepted_structure(log: EventLog, env: str, cls: str) -> str | None:
    """The env's structure accepted last for a model class (loop 1's current one), or None."""
    return read_structures(log, env).accepted.get(cls)


def resolve_structure(log: EventLog, env: str, name: str, policy: str) -> tuple[Structure, str]:
    """`auto` (the structure loop 1 accepted last for this kind of model, else v0-small-lookup
    for the embedded model, whose PLAN then reads memory, and v0 for others), a seed (`v0`,
    `v0-small`, `v0-small-lookup`), or a stored version."""
    if name == "auto":
        cls = model_class(policy)
        name = accepted_structure(log, env, cls) or (SMALL if cls == "small" else "v0")
    structure = seed(env, name)
    if structure is not None:
        return structure, register_structure(log, structure, "starting structure")
    stored = stored_structures(log, env)
    if name not in stored:
        known = ", ".join([*SEEDS, *sorted(stored)])
        raise UserError(f"no structure {name!r} for {env}: one of {known}")
    return stored[name], name
