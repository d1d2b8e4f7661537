"""Paired comparison on the same seeds: per-seed differences and a bootstrap interval. Pure."""

from __future__ import annotations

import hashlib
import random

RESAMPLES = 10_000


def mean(values: list[float]) -> float:
    """The mean as every figure records it (6 places; 0 for none)."""
    return round(sum(values) / len(values), 6) if values else 0.0


def interval(diffs: list[float], label: str, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean difference; the resampling is seeded by
    `label` (the versions compared), so the same comparison gives the same interval."""
    if not diffs:
        return (0.0, 0.0)
    rng = random.Random(int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big"))
    n = len(diffs)
    means = sorted(sum(rng.choice(diffs) for _ in range(n)) / n for _ in range(RESAMPLES))
    lo = means[int((1 - level) / 2 * RESAMPLES)]
    hi = means[min(RESAMPLES - 1, int((1 + level) / 2 * RESAMPLES))]
    return (round(lo, 6), round(hi, 6))
