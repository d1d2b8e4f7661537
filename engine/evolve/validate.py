"""Whether a reviewer's proposal may be tried at all. Pure.

It must pass the structure's own check (it decodes; the vocabulary, placeholders, phases,
bounds on limits and sizes), be for the same env, stay small enough for a review loop,
and make at least one structural change over its parent: rewording alone does not count.
"""

from __future__ import annotations

from automem.engine.structure.check import check_structure
from automem.engine.structure.diff import diff
from automem.schemas.errors import UserError
from automem.schemas.structure import Structure

MAX_DOCUMENT = 256 * 1024  # bytes of a proposed structure document


def check_proposal(document: bytes, parent: Structure) -> Structure:
    """The proposed structure, or a UserError whose one line says why it is refused."""
    if len(document) > MAX_DOCUMENT:
        raise UserError(f"the proposal is {len(document)} bytes, over the {MAX_DOCUMENT}-byte limit")
    candidate = check_structure(document)
    if candidate.env != parent.env:
        raise UserError(f"the proposal is for env {candidate.env!r}, not {parent.env!r}")
    if not any(c.structural for c in diff(parent, candidate)):
        raise UserError("the proposal changes wording only: change commands, files, budgets or limits")
    return candidate
