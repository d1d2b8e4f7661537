"""What an audit reports: the failure, the first wrong memory write, and the evidence chain."""

from __future__ import annotations

import msgspec


class Failure(msgspec.Struct, frozen=True):
    """The step where things went wrong, and the rule that says so (or `named` by the user)."""

    step: int
    rule: str  # death | unproductive_streak | repeated_observation | invalid_actions | resource_lost | named
    detail: str


class Link(msgspec.Struct, frozen=True):
    """One piece of evidence: a write, a read that saw it, a decision it fed, the failure."""

    step: int
    phase: str
    turn: int
    kind: str  # write | read | decision | failure
    detail: str
    file: str = ""
    version: str = ""


class Mistake(msgspec.Struct, frozen=True):
    """The earliest write on the chain that the recorded env facts show to be wrong."""

    step: int
    phase: str
    turn: int
    op: str
    file: str
    content: str
    kind: str  # contradicted | stale | lost | duplicate
    evidence: str
    version: str = ""
    index: int = 0  # which command of that model answer it was


class Counterfactual(msgspec.Struct, frozen=True):
    """The fork without the wrong write: does the failure happen again within the horizon?"""

    episode: str
    parent: str
    fork_step: int
    horizon: int
    steps: int
    failure_recurs: bool | None  # None: the fork ended before the parent's failure step without it
    detail: str


class AuditResult(msgspec.Struct):
    episode: str
    failure: Failure | None
    first_mistake: Mistake | None
    chain: list[Link]
    reason: str
    counterfactual: Counterfactual | None = None
