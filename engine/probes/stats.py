"""Probe accuracy with a bootstrap interval: pure, seeded, the same every time it is derived."""

from __future__ import annotations

import random
from typing import Sequence

import msgspec

RESAMPLES = 1000


class Accuracy(msgspec.Struct, frozen=True):
    """Share of probes answered right, with a 95% percentile-bootstrap interval; None: no probe."""

    n: int
    accuracy: float | None
    low: float | None
    high: float | None


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def bootstrap(values: Sequence[float], seed: int = 0) -> Accuracy:
    """Mean of `values` (1/0 verdicts, or paired differences) and its 95% bootstrap interval."""
    if not values:
        return Accuracy(0, None, None, None)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(_mean([values[rng.randrange(n)] for _ in range(n)]) for _ in range(RESAMPLES))
    return Accuracy(n, round(_mean(values), 4), round(means[int(0.025 * RESAMPLES)], 4),
                    round(means[int(0.975 * RESAMPLES) - 1], 4))
