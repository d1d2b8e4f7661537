"""Episode summaries, derived from the first and last events of each episode stream."""

from __future__ import annotations

import msgspec

from automem.engine.episodes.leases import lease_state
from automem.engine.episodes.read import episode_start, require_episode
from automem.engine.episodes.timeline import last_step
from automem.engine.log.port import EventLog
from automem.schemas.events import EpisodeAbandoned, EpisodeEnded
from automem.schemas.streams import episode_of, episode_stream


class EpisodeSummary(msgspec.Struct, kw_only=True):
    """The `automem run` / `automem episodes` JSON shape of ../shared/CLI.md."""

    id: str
    env: str
    task: str
    seed: int
    steps: int
    return_: float = msgspec.field(name="return", default=0.0)
    progression: float = 0.0
    memory_ops: int | None = 0  # None: the agent has no memory (not applicable, never 0)
    agent: str = "memory"
    structure: str
    models: dict[str, str]
    temperature: float = 0.0
    top_p: float = 1.0
    status: str  # running | interrupted (no writer holds it: its run died) | unfinished (on Kafka) | ended | abandoned
    cause: str = ""


def summarize(log: EventLog, episode: str) -> EpisodeSummary:
    """An episode from its first and last events (and its lease while it runs): a listing reads no more."""
    head = require_episode(log, episode)
    stream = episode_stream(episode)
    first = episode_start(log, episode)
    last = next(iter(log.read_stream(stream, head - 1))).event
    summary = EpisodeSummary(
        id=episode, env=first.env, task=first.task, seed=first.seed, steps=0,
        structure=first.structure, models=first.models, temperature=first.temperature, top_p=first.top_p,
        status="running", agent=first.agent.label(), memory_ops=0 if first.agent.has_memory else None,
    )
    if isinstance(last, EpisodeEnded):
        summary.steps, summary.return_, summary.progression = last.length, last.return_, last.progression
        summary.status, summary.cause = "ended", last.cause
        if first.agent.has_memory:
            summary.memory_ops = last.memory_ops
        return summary
    summary.steps = last_step(log, episode) + 1
    if isinstance(last, EpisodeAbandoned):
        summary.status, summary.cause = "abandoned", last.reason
        return summary
    state = lease_state(log, episode)
    if state == "free" and log.head(stream) != head:
        return summarize(log, episode)  # it ended (or went on) while we looked
    summary.status = {"held": "running", "free": "interrupted", "unknown": "unfinished"}[state]
    if state == "free":
        summary.cause = "no process is writing it: its run stopped before the episode ended"
    return summary


def list_episodes(log: EventLog) -> list[EpisodeSummary]:
    return [summarize(log, episode_of(stream)) for stream in log.streams("ep")]
