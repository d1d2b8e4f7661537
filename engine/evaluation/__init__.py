"""Evaluation and promotion of memory specialists, on held-out seeds.

A candidate version plays two-model episodes (the base model commits the actions, the
version runs LOG and the lookups) on a fixed seed set; the incumbent (the promoted
version, or the base model alone when none is) plays the same seeds. Episodes already in
the log for the same env, task, seed, structure, models and max steps are reused rather
than re-run. The seeds must be disjoint from those of the episodes the candidate's
dataset came from. Promotion needs the candidate to beat the incumbent on the chosen
metric, by the mean of the per-seed paired differences; the bootstrap interval is
reported beside it.

May import: schemas, memory, log, envs, episodes, models, rollout, audit, scoring; the
statistics (paired) are pure.
"""

from __future__ import annotations

from automem.engine.evaluation.compare import (
    METRICS,
    EvalResult,
    ProbeFigure,
    Side,
    SideSummary,
    evaluate,
    play_seeds,
    side_summary,
    training_seeds,
    unclean,
)

__all__ = ['EvalResult', 'METRICS', 'ProbeFigure', 'Side', 'SideSummary', 'evaluate', 'play_seeds', 'side_summary', 'training_seeds', 'unclean']
