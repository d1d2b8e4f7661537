"""Whether a reviewer's proposal may be tried at all. Pure.

It must decode as a structure of the same env, pass the structure's own validation (the
vocabulary, placeholders, phases, bounds on limits and sizes), and make at least one
structural change over its parent: rewording prompts or files alone does not count.
"""

from __future__ import annotations

import msgspec

from automem.schemas.errors import UserError
from automem.schemas.structure import Structure, decode_structure

from .diff import diff

MAX_DOCUMENT = 256 * 1024  # bytes of a proposed structure document


def check_proposal(document: bytes, parent: Structure) -> Structure:
    """The proposed structure, or a UserError whose one line says why it is refused."""
    if len(document) > MAX_DOCUMENT:
        raise UserError(f"the proposal is {len(document)} bytes, over the {MAX_DOCUMENT}-byte limit")
    try:
        candidate = decode_structure(document)
    except msgspec.DecodeError as exc:
        raise UserError(f"the proposal is not a structure document: {str(exc).splitlines()[0]}") from None
    if candidate.env != parent.env:
        raise UserError(f"the proposal is for env {candidate.env!r}, not {parent.env!r}")
    problems = validation_problems(candidate)
    if problems:
        raise UserError("the proposal is not a valid structure: " + "; ".join(problems[:5]))
    if not any(c.structural for c in diff(parent, candidate)):
        raise UserError("the proposal changes wording only: change commands, files, budgets or limits")
    return candidate


def validation_problems(structure: Structure) -> list[str]:
    """The structure's own validation (vocabulary, placeholders, phases, bounds)."""
    from automem.engine.structure_check import validate

    return validate(structure)
