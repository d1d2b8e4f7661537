"""Helpers every text game shares: action-name matching, direction phrases, quiet imports.

Action strings come from language models, so matching forgives case, underscores, hyphens
and spacing; a phrase such as "2 north, 1 east" reads the same in every game.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import warnings
from typing import Iterator

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize(action: str) -> str:
    """Lower-case, separators to single spaces, trimmed: "Move_WEST " -> "move west"."""
    return _SEPARATORS.sub(" ", action.strip().lower()).strip()


class ActionNames:
    """Canonical action names and their forgiving lookup (spaces optional, case ignored)."""

    def __init__(self, canonical: list[str], aliases: dict[str, str] | None = None) -> None:
        self.canonical = list(canonical)
        self._lookup: dict[str, str] = {}
        for name in self.canonical:
            self._add(name, name)
        for alias, name in (aliases or {}).items():
            self._add(alias, name)

    def _add(self, text: str, name: str) -> None:
        key = normalize(text)
        self._lookup.setdefault(key, name)
        self._lookup.setdefault(key.replace(" ", ""), name)

    def match(self, action: str) -> str | None:
        key = normalize(action)
        return self._lookup.get(key) or self._lookup.get(key.replace(" ", ""))


@functools.cache  # a few thousand (dx, dy) pairs at most, asked for many times a step
def offset_phrase(dx: int, dy: int) -> str:
    """Where a thing lies relative to the player, y growing southward: "2 north, 1 east"."""
    parts = []
    if dy:
        parts.append(f"{abs(dy)} {'north' if dy < 0 else 'south'}")
    if dx:
        parts.append(f"{abs(dx)} {'west' if dx < 0 else 'east'}")
    return ", ".join(parts) or "here"


_WAY = re.compile(r"\b(\d{1,4})\s+(north|south|east|west)\b", re.I)
_SIGN = {"north": (0, -1), "south": (0, 1), "east": (1, 0), "west": (-1, 0)}


def offset_of(phrase: str) -> tuple[int, int] | None:
    """The inverse of `offset_phrase`, tolerant of order and wording: "2 north, 1 east" ->
    (1, -2); "here" -> (0, 0); None when the text names no offset."""
    if phrase.strip().lower() == "here":
        return 0, 0
    dx = dy = 0
    found = False
    for count, way in _WAY.findall(phrase):
        sx, sy = _SIGN[way.lower()]
        dx, dy, found = dx + sx * int(count), dy + sy * int(count), True
    return (dx, dy) if found else None


def derive_seed(seed: int, purpose: str, bits: int = 63) -> int:
    """A stable sub-seed: the same (seed, purpose) gives the same number in every process."""
    digest = hashlib.sha256(f"automem/{purpose}/{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << bits) - 1)


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence the warnings nle and minihack print on import (pkg_resources, gym) and when NLE
    gives up a tidy quit: noise for users, never a sign of a wrong game."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
