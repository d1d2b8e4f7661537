"""The scorer's parameters, and the version that names them. Pure.

A scorer version is a hash of the rules' revision and every parameter, so scores written
by different rules or weights never mix: they sit side by side on the score stream.
"""

from __future__ import annotations

import hashlib

import msgspec

RULES_REVISION = "rules-2"  # bump when the rules change meaning, even with the same parameters


class Params(msgspec.Struct, frozen=True, kw_only=True):
    # time
    horizon: int = 20  # steps a PLAN decision is judged over (its action and what follows)
    gamma: float = 0.9  # discount per step: of the outcome signal, and of read credit with distance
    read_window: int = 50  # steps after a write in which reads of its lines credit it
    baseline_window: int = 100  # steps of the episode's own running baseline
    # the outcome signal of one step
    reward: float = 1.0  # the env's reward
    achievement: float = 1.0  # per achievement unlocked
    level: float = 1.0  # per dungeon or experience level gained
    damage: float = 0.05  # per point of damage taken
    death: float = 5.0
    resource_lost: float = 0.5  # per item count lost on a step that does not use items up
    invalid: float = 0.2  # an invalid or missing action
    stuck: float = 0.1  # a step that left the scene exactly as it was
    # penalties on memory commands
    error: float = 0.5  # the command returned an error
    contradicted: float = 1.0  # a claim its own moment's facts contradict
    stale: float = 0.5  # a claim true when written, false when a read showed it
    duplicate: float = 0.25  # a line written again into a file that reads then showed cut short
    lost: float = 0.5  # a true line removed while still true

    @property
    def final_after(self) -> int:
        """Steps after which a step's decisions can no longer change: a write is credited by
        reads within the window; a LOG read passes on what PLAN reads within the window after
        it gave the writes it informed; each PLAN read's decision is judged over the horizon."""
        return 2 * self.read_window + self.horizon


def scorer_version(params: Params) -> str:
    raw = RULES_REVISION.encode() + msgspec.msgpack.encode(params)
    return f"{RULES_REVISION}-{hashlib.sha256(raw).hexdigest()[:12]}"
