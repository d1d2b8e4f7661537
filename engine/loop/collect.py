"""Collecting loop 2's rollouts: rounds of training seeds until a selection keeps enough decisions.

Shared by the loop's rollouts stage and the learning benchmark, which differ only in how a
round is played and how its decisions are counted.
"""

from __future__ import annotations

from typing import Callable

import msgspec

from automem.engine.evaluation.compare import Side


class Collected(msgspec.Struct, frozen=True, kw_only=True):
    episodes: tuple[str, ...]
    seeds: tuple[int, ...]
    progression: tuple[float, ...]
    reused: int
    selectable: int | None  # what the count found last (None: no minimum, nothing counted)
    stopped: str  # "minimum", "budget", or "" without a minimum


def collect(play: Callable[[tuple[int, ...]], Side], seeds_of: Callable[[int], tuple[int, ...]], budget: int,
            minimum: int, count: Callable[[list[str], tuple[int, ...]], int]) -> Collected:
    """Play round after round (`seeds_of(round)`, the last one cut to the budget) until
    `count(new episodes, all seeds so far)` reaches `minimum` (0: one round, nothing counted)
    or `budget` episodes are played."""
    episodes: list[str] = []
    seeds: list[int] = []
    progression: list[float] = []
    reused, found, round_ = 0, None, 0
    while len(seeds) < budget:
        chosen = seeds_of(round_)[: budget - len(seeds)]
        side = play(chosen)
        episodes += side.episodes
        seeds += chosen
        progression += side.progression
        reused, round_ = reused + side.reused, round_ + 1
        if minimum:
            found = count(side.episodes, tuple(seeds))
            if found >= minimum:
                return Collected(episodes=tuple(episodes), seeds=tuple(seeds), progression=tuple(progression),
                                 reused=reused, selectable=found, stopped="minimum")
        else:
            break
    return Collected(episodes=tuple(episodes), seeds=tuple(seeds), progression=tuple(progression), reused=reused,
                     selectable=found, stopped="budget" if minimum else "")
