"""`automem score`'s whole job: check the episodes a user names (or take every one, or one
game's), then score them. The check reads the store without creating it; only then is it
opened for writing, so a bad request leaves no trace."""

from __future__ import annotations

from automem.engine.episodes.read import require_episode, started
from automem.engine.log import open_log
from automem.engine.log.port import EventLog
from automem.engine.policy.spec import parse_spec
from automem.engine.scoring.episodes import ScoreReport, score_episodes
from automem.schemas.errors import UserError
from automem.schemas.streams import episode_of


def _env(log: EventLog, episode: str) -> str:
    """The game of an episode, from its first event ("" when that is not an EpisodeStarted)."""
    start = started(log, episode)
    return start.env if start is not None else ""


def select_episodes(log: EventLog, episodes: list[str], env: str | None) -> list[str]:
    """The named episodes (each must exist), or else every episode; of `env` only when given."""
    for episode in episodes:
        require_episode(log, episode)
    chosen = episodes or [episode_of(s) for s in log.streams("ep")]
    if env is not None:
        chosen = [e for e in chosen if _env(log, e) == env]
    if not chosen:
        raise UserError("no episodes to score" + (f" of env {env!r}" if env else "") + ": run `automem run` first")
    return chosen


def score_selected(bus: str | None, data: str | None, episodes: list[str], env: str | None,
                   judge: str | None, judge_sample: int) -> ScoreReport:
    """Score the selected episodes (see `select_episodes`), a judge grading a sample when given."""
    with open_log(bus, data, create=False) as log:
        chosen = select_episodes(log, episodes, env)
    if judge is not None:
        parse_spec(judge)
    with open_log(bus, data) as log:
        return score_episodes(log, chosen, judge=judge, judge_sample=judge_sample)
