"""Which scored decisions become training examples: pure filters over scores and episodes.

Every filter is deterministic: order is by score (best first), ties broken by the
decision's place (episode, step, phase, turn); results come back in that place order.
A `Funnel` counts what each filter removed, so an empty selection can say why.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from itertools import chain, zip_longest
from typing import Callable

import msgspec

from automem.schemas.errors import UserError

Key = tuple[str, int, str, int]  # (episode, step, phase, turn): one model answer


class Decision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One scored model answer of the memory role, with its cleaned answer once known."""

    episode: str
    step: int
    phase: str
    turn: int
    score: float
    env: str
    answer: str = ""  # the cleaned answer, once post-processed
    model: str = ""  # the model that gave it

    @property
    def key(self) -> Key:
        return (self.episode, self.step, self.phase, self.turn)


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """The parameters of a selection; with the store's contents they determine the dataset."""

    scorer: str | None = None  # None: the newest rule scorer in the store
    min_score: float | None = None  # neither this nor `top`: decisions scoring above 0
    top: float | None = None
    top_episodes: float | None = None
    balance: bool = True
    max_examples: int | None = None
    env: str | None = None
    seeds: tuple[int, ...] | None = None  # only episodes played on these seeds (a loop's training seeds)
    # The ablation of credit: instead of by score, `sample` decisions drawn at random (seeded),
    # every other filter the same.
    sample: int | None = None
    sample_seed: int = 0

    def recorded(self) -> dict[str, object]:
        """The selection as a manifest and DatasetBuilt record it: fields added later are left
        out while unused, so every earlier selection keeps its dataset id."""
        fields = msgspec.structs.asdict(self)
        if self.sample is None:
            del fields["sample"], fields["sample_seed"]
        return fields

    def check(self) -> Selection:
        if self.min_score is not None and self.top is not None:
            raise UserError("give either --min-score or --top, not both")
        for name, value in (("--top", self.top), ("--top-episodes", self.top_episodes)):
            if value is not None and not 0 < value <= 1:
                raise UserError(f"{name} is a fraction in (0, 1], got {value}")
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise UserError(f"--min-score must be a finite number, got {self.min_score}")
        if self.max_examples is not None and self.max_examples < 1:
            raise UserError(f"--max-examples must be at least 1, got {self.max_examples}")
        if self.sample is not None:
            if self.sample < 1:
                raise UserError(f"--random must be at least 1 decision, got {self.sample}")
            if self.min_score is not None or self.top is not None or self.max_examples is not None:
                raise UserError("--random draws decisions instead of selecting them by score: drop --min-score, "
                                "--top and --max-examples")
        return self


class Funnel:
    """The decisions still in the selection, what each filter took out and what was refused, in order."""

    def __init__(self, decisions: list[Decision]) -> None:
        self.kept = sorted(decisions, key=_place)
        self.removed: dict[str, int] = {}  # filter -> decisions it removed
        self.rejected: dict[str, int] = {}  # reason -> decisions refused for it

    def apply(self, step: str, kept: list[Decision]) -> None:
        self.removed[step] = self.removed.get(step, 0) + len(self.kept) - len(kept)
        self.kept = sorted(kept, key=_place)

    def refuse(self, reasons: dict[Key, str]) -> None:
        """Take out the decisions named, each for its reason."""
        for reason in reasons.values():
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.kept = [d for d in self.kept if d.key not in reasons]

    def story(self) -> str:
        return "; ".join(chain((f"{step} removed {n}" for step, n in self.removed.items()),
                               (f"{n} refused: {reason}" for reason, n in sorted(self.rejected.items()))))


def _place(d: Decision) -> Key:
    return d.key


def best_first(d: Decision) -> tuple[float, Key]:
    return (-d.score, d.key)


Rank = Callable[[Decision], tuple]


def drawn(seed: int) -> Rank:
    """A random order of decisions, a pure function of `seed` and each decision's place: the
    ablation that keeps everything of a selection but the scores."""
    def rank(d: Decision) -> tuple[bytes, Key]:
        return (hashlib.blake2b(f"{seed}/{d.key}".encode(), digest_size=8).digest(), d.key)
    return rank


def _fraction(items: list, fraction: float) -> int:
    """How many items a fraction keeps: rounded up, so a non-empty set keeps at least one."""
    return math.ceil(fraction * len(items) - 1e-9)


def by_env(decisions: list[Decision], env: str) -> list[Decision]:
    return [d for d in decisions if d.env == env]


def top_episodes(decisions: list[Decision], strength: dict[str, tuple[float, float]], fraction: float) -> list[Decision]:
    """Decisions of the best `fraction` of their episodes by (progression, return), as the seed's top-percent filter."""
    episodes = sorted({d.episode for d in decisions}, key=lambda e: (-strength[e][0], -strength[e][1], e))
    best = set(episodes[:_fraction(episodes, fraction)])
    return [d for d in decisions if d.episode in best]


def by_score(decisions: list[Decision], min_score: float | None, top: float | None) -> list[Decision]:
    """At least `min_score`, or the best `top` fraction, or (neither) above 0: better than its episode's baseline."""
    if top is not None:
        return sorted(decisions, key=best_first)[:_fraction(decisions, top)]
    if min_score is not None:
        return [d for d in decisions if d.score >= min_score]
    return [d for d in decisions if d.score > 0]


_DIGITS = re.compile(r"\d+")


def normalised(answer: str) -> str:
    """An answer with case, spacing and numbers ignored: "step 3: Noop" and "step 4: noop" are one."""
    return " ".join(_DIGITS.sub("#", answer.lower()).split())


def distinct(decisions: list[Decision], rank: Rank = best_first) -> list[Decision]:
    """The best-ranked decision of each group of near-duplicate answers (same game and phase)."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for d in sorted(decisions, key=rank):
        group = (d.env, d.phase, normalised(d.answer))
        if group not in seen:
            seen.add(group)
            kept.append(d)
    return kept


def _groups(decisions: list[Decision], rank: Rank = best_first) -> list[list[Decision]]:
    """Decisions per (game, phase), each best first; groups in name order."""
    groups: dict[tuple[str, str], list[Decision]] = defaultdict(list)
    for d in decisions:
        groups[(d.env, d.phase)].append(d)
    return [sorted(groups[g], key=rank) for g in sorted(groups)]


def balanced(decisions: list[Decision], rank: Rank = best_first) -> list[Decision]:
    """As many decisions of each (game, phase) as the smallest such group has, the best of each."""
    groups = _groups(decisions, rank)
    size = min((len(g) for g in groups), default=0)
    return [d for g in groups for d in g[:size]]


def capped(decisions: list[Decision], limit: int, balance: bool, rank: Rank = best_first) -> list[Decision]:
    """The best `limit`; balanced selections take the groups' best in turn, so they stay balanced."""
    if balance:
        order = [d for d in chain.from_iterable(zip_longest(*_groups(decisions, rank))) if d is not None]
    else:
        order = sorted(decisions, key=rank)
    return order[:limit]
