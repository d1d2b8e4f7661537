"""Probe accuracy with its bootstrap interval: evaluation's paired statistics, seeded by a label."""

from __future__ import annotations

from typing import Sequence

import msgspec

from automem.engine.evaluation.paired import interval, mean


class Accuracy(msgspec.Struct, frozen=True):
    """Share of probes answered right (or a mean paired gap), with a 95% percentile-bootstrap
    interval; None: no probe."""

    n: int
    accuracy: float | None
    low: float | None
    high: float | None


def accuracy(values: Sequence[float], label: str) -> Accuracy:
    """The mean of 1/0 verdicts (or paired differences) and its interval, the resampling seeded
    by `label`, so the same figures come out every time they are derived."""
    if not values:
        return Accuracy(0, None, None, None)
    low, high = interval(list(values), label)
    return Accuracy(len(values), mean(list(values)), low, high)
