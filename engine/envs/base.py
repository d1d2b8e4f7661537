"""The env port: a tiny, stable text-game interface (in the spirit of Gymnasium).

Every game is seeded at reset and driven by action strings as people write them. The
observation is text; `facts` is the ground truth recorded in every step event so that
audits can check what memory claims against what was true.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from automem.schemas.events import EnvFacts


class StepResult(msgspec.Struct, frozen=True, kw_only=True):
    observation: str
    reward: float
    done: bool
    action: str  # the canonical action actually executed (the fallback if invalid)
    valid: bool  # False when the requested action was not recognised
    error: str = ""  # why the requested action was invalid, shown to the model next LOG
    facts: EnvFacts
    outcomes: tuple[tuple[str, str, float], ...] = ()  # (kind, detail, value): achievement, level, damage, death


class TextEnv(Protocol):
    name: str
    task: str
    fallback_action: str

    def reset(self, seed: int) -> tuple[str, EnvFacts]:
        """Start a new episode; same seed, same observation, byte for byte."""
        ...

    def step(self, action: str) -> StepResult:
        """Execute one action string (matched case-insensitively); never raises on bad text."""
        ...

    def valid_actions(self) -> list[str]:
        ...

    def contexts(self) -> tuple[str, str]:
        """The current observation as BALROG's prompt builder splits it: the long-term part
        (kept in a baseline's history) and the short-term part (shown for the current step only)."""
        ...

    def progression(self) -> float:
        """Progress in [0, 1] by the game's published protocol."""
        ...

    def close(self) -> None:
        ...
