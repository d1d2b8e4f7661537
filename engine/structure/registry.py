"""The structure registry: every structure document in the log by version, the one loop 1
accepted last per model class, and what `--structure NAME` means."""

from __future__ import annotations

from automem.engine.log.port import ConflictError, EventLog
from automem.engine.structure.seeds import v0
from automem.schemas.errors import UserError
from automem.schemas.events import StructureAccepted, StructureProposed
from automem.schemas.streams import structure_stream
from automem.schemas.structure import (
    Structure,
    decode_structure,
    encode_structure,
    structure_version,
)


def stored_structures(log: EventLog, env: str) -> dict[str, Structure]:
    out = {}
    for rec in log.read_stream(structure_stream(env)):
        if isinstance(rec.event, StructureProposed):
            out[rec.event.version] = decode_structure(rec.event.document)
    return out


def register_structure(log: EventLog, structure: Structure, rationale: str = "", parent: str | None = None,
                       reviewer: str = "") -> str:
    """Put the structure document in the log once, so replay finds it by version."""
    version = structure_version(structure)
    stream = structure_stream(structure.env)
    while True:
        head = log.head(stream)
        if version in stored_structures(log, structure.env):
            return version
        try:
            log.append(stream, head, [StructureProposed(env=structure.env, version=version, parent=parent,
                                                        document=encode_structure(structure), rationale=rationale,
                                                        reviewer=reviewer)])
            return version
        except ConflictError:
            continue  # another process registered something meanwhile: look again


def model_class(policy: str) -> str:
    """Which lineage of structures suits a model: the embedded model's small one, or the full one."""
    return "small" if policy.split(":", 1)[0] == "local" else "full"


def accepted_structure(log: EventLog, env: str, cls: str) -> str | None:
    """The env's structure accepted last for a model class (loop 1's current one), or None."""
    found = None
    for rec in log.read_stream(structure_stream(env)):
        if isinstance(rec.event, StructureAccepted) and rec.event.model_class == cls:
            found = rec.event.version
    return found


def resolve_structure(log: EventLog, env: str, name: str, policy: str) -> tuple[Structure, str]:
    """`auto` (the structure loop 1 accepted last for this kind of model, else v0-small for
    the embedded model and v0 for others), `v0`, `v0-small`, or a stored version."""
    if name == "auto":
        cls = model_class(policy)
        name = accepted_structure(log, env, cls) or ("v0-small" if cls == "small" else "v0")
    if name in ("v0", "v0-small"):
        structure = v0(env, small=name == "v0-small")
        return structure, register_structure(log, structure, "starting structure")
    stored = stored_structures(log, env)
    if name not in stored:
        known = ", ".join(["v0", "v0-small", *sorted(stored)])
        raise UserError(f"no structure {name!r} for {env}: one of {known}")
    return stored[name], name
