"""Loop 2's scorer: memory decisions credited by rule once their outcomes surface.

The rules are pure (params, signal, credit); this module is the edge that reads episodes
from the log and appends their scores to `score/<episode>` streams. Appends are
idempotent: a decision already scored by this scorer version is never written again, so
a re-run, a redelivered batch or a restarted consumer writes only what is missing.
"""

from __future__ import annotations

import msgspec

from automem.engine.episodes.read import episode_record, read_episode, started
from automem.engine.log import ConflictError
from automem.engine.log.port import EventLog
from automem.engine.policy.base import Policy
from automem.engine.scoring.credit import final_through, score
from automem.engine.scoring.judge import judge_episode, judge_version
from automem.engine.scoring.params import Params, scorer_version
from automem.schemas.errors import UserError
from automem.schemas.events import AnyEvent, DecisionScored, EpisodeAbandoned, EpisodeEnded
from automem.schemas.streams import score_stream

__all__ = ["Params", "ScoreReport", "episode_scores", "final_through", "score", "score_episode", "score_episodes",
           "scorer_version"]


class ScoreReport(msgspec.Struct, kw_only=True):
    """`automem score --json`."""

    scored: int  # DecisionScored events written now
    episodes: int
    scorer: str
    decisions: int = 0  # final decisions of those episodes (scored now or before)
    pending: int = 0  # episodes with decisions not final yet (still running, or cut short)
    skipped: dict[str, int] = {}  # episodes left out, per reason
    judge: str | None = None  # the judge's version, with --judge
    judged: int = 0  # its grades written now
    ungraded: int = 0  # its answers that held no grade
    judge_unavailable: str | None = None  # why it stopped; the rule scores are written regardless


def _key(d: DecisionScored) -> tuple:
    return (d.step, d.phase, d.turn, d.index)


def _final(log: EventLog, episode: str, params: Params, events: list[AnyEvent] | None) -> tuple[list[DecisionScored], bool]:
    """The episode's final decisions as this scorer scores them, and whether it ended."""
    record = read_episode(log, episode) if events is None else episode_record(log, episode, events)
    if not record.start.agent.has_memory:  # a baseline's episode: no memory decision to score
        return [], isinstance(record.events[-1], (EpisodeEnded, EpisodeAbandoned))
    decisions = score(episode, list(record.events), record.limits, params, scorer_version(params))
    return decisions, isinstance(record.events[-1], (EpisodeEnded, EpisodeAbandoned))


def _unwritten(log: EventLog, episode: str, params: Params, decisions: list[DecisionScored]) -> tuple[int, list[DecisionScored]]:
    """The score stream's head and the decisions it does not hold yet."""
    stream, version = score_stream(episode), scorer_version(params)
    head = log.head(stream)
    done = {_key(r.event) for r in log.read_stream(stream)
            if isinstance(r.event, DecisionScored) and r.event.scorer == version and r.event.rule == "rules"}
    return head, [d for d in decisions if _key(d) not in done]


def unscored(log: EventLog, episode: str, params: Params = Params()) -> tuple[int, int]:
    """(not written yet, in all) of the episode's final decisions as this scorer version scores
    them: what a driver waits on while `automem consume scorer` works."""
    decisions, _ = _final(log, episode, params, None)
    return len(_unwritten(log, episode, params, decisions)[1]), len(decisions)


def score_episode(log: EventLog, episode: str, params: Params = Params(),
                  events: list[AnyEvent] | None = None) -> tuple[int, int, bool]:
    """Score the episode's final decisions (from `events`, a prefix of its stream the caller
    holds, or else the stream itself); returns (written now, final decisions in all, ended)."""
    decisions, ended = _final(log, episode, params, events)
    while True:
        head, new = _unwritten(log, episode, params, decisions)
        if not new:
            return 0, len(decisions), ended
        try:
            log.append(score_stream(episode), head, new)
            return len(new), len(decisions), ended
        except ConflictError:
            continue  # another scorer wrote meanwhile: look again


def score_episodes(log: EventLog, episodes: list[str], params: Params = Params(), judge: str | None = None,
                   judge_sample: int = 20) -> ScoreReport:
    """Score each episode; one that cannot be read is skipped and counted by reason, the rest go on.
    With a judge (a policy spec), up to `judge_sample` final answers per episode also get its
    grade, until it fails: a judge that cannot be reached is reported, the rule scores are written."""
    report = ScoreReport(scored=0, episodes=0, scorer=scorer_version(params))
    model: Policy | None = None
    if judge is not None:
        from automem.engine.policy.spec import make_policy, parse_spec

        try:
            model = make_policy(judge)
            report.judge = judge_version(model)
        except UserError as exc:
            if parse_spec(judge).kind in ("file", "local", "model"):
                raise  # bad input at hand, not a judge that is down
            report.judge, report.judge_unavailable = judge, str(exc)
    for episode in episodes:
        start = started(log, episode)
        if start is not None and not start.agent.has_memory:
            reason = "played by an agent without memory"
            report.skipped[reason] = report.skipped.get(reason, 0) + 1
            continue
        try:
            written, final, ended = score_episode(log, episode, params)
        except UserError as exc:
            reason = str(exc).split(":")[0]
            report.skipped[reason] = report.skipped.get(reason, 0) + 1
            continue
        report.episodes += 1
        report.scored += written
        report.decisions += final
        report.pending += not ended
        if model is not None and report.judge_unavailable is None:
            judged = judge_episode(log, episode, model, episode_scores(log, episode, report.scorer)[1] if final else {},
                                   judge_sample)
            report.judged += judged.judged
            report.ungraded += judged.ungraded
            report.judge_unavailable = judged.unavailable
    return report


def episode_scores(log: EventLog, episode: str, scorer: str | None = None) -> tuple[str | None, dict[tuple, DecisionScored]]:
    """The rule scores of one episode by (step, phase, turn, index), of `scorer` or else of the
    version written last to its stream; (None, {}) when it has none."""
    scored = [r.event for r in log.read_stream(score_stream(episode))
              if isinstance(r.event, DecisionScored) and r.event.rule == "rules"]
    version = scorer if scorer is not None else (scored[-1].scorer if scored else None)
    chosen = {_key(d): d for d in scored if d.scorer == version}
    if scorer is not None and not chosen:
        known = ", ".join(sorted({d.scorer for d in scored})) or "none"
        raise UserError(f"no scores of scorer {scorer} for {episode} (it has: {known}): run `automem score` first")
    return version, chosen
