"""Derived files: what the engine writes after each step from the step's env facts. Pure.

A structure declares them (`Structure.derived`); the agent turns each into a `write` op of
phase "derived", logged before the step's memory digest, so memory stays a fold of the
log and replay re-derives every byte. They are no decision of the model's: provenance
gives their lines an owner that the audit never blames and the scorer never credits.
"""

from __future__ import annotations

from automem.engine.memory.state import MemoryState
from automem.schemas.events import EnvFacts, MemoryOp
from automem.schemas.structure import DerivedFile, Structure

HEADER = "# written by the engine after every step (read-only)"
# Vitals the games report besides health, in this order where present (Crafter, then NetHack's).
VITALS = ("food", "drink", "energy", "sleeping", "hunger", "Pw", "AC", "encumbrance", "conditions")


def _section(field: str, facts: EnvFacts) -> list[str]:
    if field == "position":
        return [f"position: {facts.position[0]},{facts.position[1]}"] if facts.position is not None else []
    if field == "vitals":
        health = [f"health: {facts.health:g}"] if facts.health is not None else []
        return health + [f"{k}: {facts.extra[k]}" for k in VITALS if facts.extra.get(k)]
    if field == "inventory":
        return ["inventory: " + (", ".join(f"{name} {n}" for name, n in sorted(facts.inventory.items())) or "nothing")]
    if field == "achievements":
        return ["achievements: " + (", ".join(sorted(facts.achievements)) or "none")]
    if field == "level":
        return ([f"depth: {facts.depth}"] if facts.depth is not None else []) + \
               ([f"level: {facts.level}"] if facts.level is not None else [])
    return []


def content(spec: DerivedFile, facts: EnvFacts) -> str:
    """The file's text for these facts: one `name: value` line per fact, in `shows` order."""
    lines = [HEADER] + [line for field in spec.shows for line in _section(field, facts)]
    return "\n".join(lines) + "\n"


def derived_ops(structure: Structure, facts: EnvFacts, memory: MemoryState) -> list[MemoryOp]:
    """The writes that bring each derived file up to date (none for a file already so)."""
    ops = []
    for spec in structure.derived:
        text = content(spec, facts)
        current = memory.files.get(spec.name)
        if current is None or current.content != text:
            ops.append(MemoryOp("write", spec.name, (text,)))
    return ops
