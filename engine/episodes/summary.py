"""Episode summaries, derived from the first and last events of each episode stream."""

from __future__ import annotations

import msgspec

from automem.engine.episodes.leases import lease_state
from automem.engine.episodes.timeline import last_step
from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError
from automem.schemas.events import EpisodeAbandoned, EpisodeEnded, EpisodeStarted
from automem.schemas.streams import episode_stream


class EpisodeSummary(msgspec.Struct, kw_only=True):
    """The `automem run` / `automem episodes` JSON shape of ../shared/CLI.md."""

    id: str
    env: str
    task: str
    seed: int
    steps: int
    return_: float = msgspec.field(name="return", default=0.0)
    progression: float = 0.0
    memory_ops: int = 0
    structure: str
    models: dict[str, str]
    temperature: float = 0.0
    top_p: float = 1.0
    status: str  # running | interrupted (no writer holds it: its run died) | unfinished (on Kafka) | ended | abandoned
    cause: str = ""


def require_episode(log: EventLog, episode: str) -> int:
    """The stream head of an existing episode, or a clear error naming how to list them."""
    head = log.head(episode_stream(episode))
    if head == 0:
        raise UserError(f"unknown episode {episode!r}: `automem episodes` lists the episodes in this store")
    return head


def summarize(log: EventLog, episode: str) -> EpisodeSummary:
    head = require_episode(log, episode)
    stream = episode_stream(episode)
    first = next(iter(log.read_stream(stream, 0))).event
    if not isinstance(first, EpisodeStarted):
        raise UserError(f"episode {episode!r} does not begin with EpisodeStarted; the stream is malformed")
    last = next(iter(log.read_stream(stream, head - 1))).event
    summary = EpisodeSummary(
        id=episode, env=first.env, task=first.task, seed=first.seed, steps=0,
        structure=first.structure, models=first.models, temperature=first.temperature, top_p=first.top_p,
        status="running",
    )
    if isinstance(last, EpisodeEnded):
        summary.steps, summary.return_, summary.progression = last.length, last.return_, last.progression
        summary.memory_ops, summary.status, summary.cause = last.memory_ops, "ended", last.cause
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
    return [summarize(log, stream.split("/", 1)[1]) for stream in log.streams("ep")]
