"""A structure by its version, for reading only: a stored one, else a seed (v0, v0-small, ...).
Unlike `registry.resolve_structure` it writes nothing, so the read commands can use it."""

from __future__ import annotations

from automem.engine.log.port import EventLog
from automem.engine.structure.registry import stored_structures
from automem.engine.structure.seeds import seed
from automem.schemas.errors import UserError
from automem.schemas.structure import Structure


def find_structure(log: EventLog, env: str, version: str) -> Structure:
    """The structure `version` of `env`, or a one-line error naming how to list them."""
    found = stored_structures(log, env).get(version)
    if found is None:
        found = seed(env, version)
    if found is None:
        raise UserError(f"no structure {version!r} for {env}: `automem structure list --env {env}` lists them")
    return found
