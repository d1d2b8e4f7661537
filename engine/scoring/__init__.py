"""Loop 2's scorer: memory decisions credited by rule once their outcomes surface.

The rules are pure (params, signal, credit); this module is the edge that reads episodes
from the log and appends their scores to `score/<episode>` streams. Appends are
idempotent: a decision already scored by this scorer version is never written again, so
a re-run, a redelivered batch or a restarted consumer writes only what is missing.

May import: schemas, memory, log, policy, episodes (the one reader and the trace), audit
(the provenance graph the credit walks).
"""

from __future__ import annotations

from automem.engine.scoring.episodes import (
    Params,
    ScoreReport,
    episode_scores,
    final_through,
    score,
    score_episode,
    score_episodes,
    scorer_version,
    unscored,
)

__all__ = ['Params', 'ScoreReport', 'episode_scores', 'final_through', 'score', 'score_episode', 'score_episodes', 'scorer_version', 'unscored']
