"""Sampling settings and per-call seeds.

Loop 2 learns from many episodes of one model, and greedy decoding makes them near
copies; sampling makes them differ while keeping an episode a pure function of its
inputs: each call's seed comes from the episode seed and the call's place (step, phase,
turn, role), never from a clock or a global generator, so the same run reproduces.
"""

from __future__ import annotations

import hashlib

import msgspec

from automem.schemas.errors import UserError

MAX_TEMPERATURE = 2.0


class Sampling(msgspec.Struct, frozen=True):
    """temperature 0 is greedy decoding (top_p then has no effect)."""

    temperature: float = 0.0
    top_p: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def describe(self) -> str:
        return "greedy" if self.greedy else f"T={self.temperature:g} top-p={self.top_p:g}"


GREEDY = Sampling()


def check_sampling(temperature: float | None, top_p: float | None, default: Sampling = GREEDY) -> Sampling:
    """The CLI's `--temperature`/`--top-p` (None: the default), checked: a bad value is a user error."""
    t = default.temperature if temperature is None else temperature
    p = default.top_p if top_p is None else top_p
    if not 0.0 <= t <= MAX_TEMPERATURE:  # also refuses NaN
        raise UserError(f"--temperature {t:g} is out of range: give 0 (greedy) to {MAX_TEMPERATURE:g}")
    if not 0.0 < p <= 1.0:
        raise UserError(f"--top-p {p:g} is out of range: give a value in (0, 1], 1 keeps every token")
    return Sampling(float(t), float(p))


def call_seed(episode_seed: int, step: int, phase: str, turn: int, role: str) -> int:
    """A 63-bit seed for one model call, a pure function of where the call sits in its episode."""
    place = f"{episode_seed}/{step}/{phase}/{turn}/{role}".encode()
    return int.from_bytes(hashlib.blake2b(place, digest_size=8).digest(), "big") >> 1
