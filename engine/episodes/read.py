"""The one reader of a recorded episode: its events in order, its start, the structure it
was played under and the memory limits its commands ran under.

Every command that opens an episode (replay, audit, score, show, report, summaries,
evaluation, dataset examples, the reviewer's digest) opens it here, so "is there such an episode", "is its stream well
formed" and "under which limits" have one answer each.
"""

from __future__ import annotations

import msgspec

from automem.engine.log.port import EventLog
from automem.engine.structure.registry import stored_structures
from automem.schemas.errors import UserError
from automem.schemas.events import AnyEvent, EpisodeStarted, LLMCalled, StepTaken
from automem.schemas.streams import episode_stream
from automem.schemas.structure import DEFAULT_LIMITS, MemoryLimits, Structure, agent_limits


class EpisodeRecord(msgspec.Struct, frozen=True):
    """An episode as its log records it."""

    episode: str
    events: list[AnyEvent]
    start: EpisodeStarted
    structure: Structure | None  # None: its document is not in this log (stream structure/<env>)

    @property
    def limits(self) -> MemoryLimits:
        """The limits the model's commands ran under, as the agent set them (derived files
        read-only); the defaults when the structure is missing. Reads, the part audit and
        scoring re-apply, do not depend on which files are read-only."""
        return agent_limits(self.structure) if self.structure is not None else DEFAULT_LIMITS

    @property
    def engine_limits(self) -> MemoryLimits:
        """The limits the engine's own ops (seeded and derived files) ran under: nothing read-only."""
        return msgspec.structs.replace(self.limits, read_only=())

    @property
    def calls(self) -> list[LLMCalled]:
        return [e for e in self.events if isinstance(e, LLMCalled)]

    @property
    def steps(self) -> list[StepTaken]:
        return [e for e in self.events if isinstance(e, StepTaken)]


def require_episode(log: EventLog, episode: str) -> int:
    """The stream head of an existing episode, or a clear error naming how to list them."""
    head = log.head(episode_stream(episode))
    if head == 0:
        raise _unknown(episode)
    return head


def _unknown(episode: str) -> UserError:
    return UserError(f"unknown episode {episode!r}: `automem episodes` lists the episodes in this store")


def _started(episode: str, first: AnyEvent | None) -> EpisodeStarted:
    if first is None:
        raise _unknown(episode)
    if not isinstance(first, EpisodeStarted):
        raise UserError(f"episode {episode!r} does not begin with EpisodeStarted; its stream is malformed")
    return first


def first_event(log: EventLog, episode: str) -> AnyEvent | None:
    """An episode's first event alone (listings read no more); None for no such episode."""
    first = next(iter(log.read_stream(episode_stream(episode))), None)
    return None if first is None else first.event


def started(log: EventLog, episode: str) -> EpisodeStarted | None:
    """An episode's start, or None where there is none to read (listings pass over those)."""
    first = first_event(log, episode)
    return first if isinstance(first, EpisodeStarted) else None


def episode_start(log: EventLog, episode: str) -> EpisodeStarted:
    """An episode's start; no episode, or one that does not begin with its start, is an error."""
    return _started(episode, first_event(log, episode))


def episode_record(log: EventLog, episode: str, events: list[AnyEvent]) -> EpisodeRecord:
    """The record of an episode whose events (its stream, or a prefix of it) the caller holds."""
    start = _started(episode, events[0] if events else None)
    return EpisodeRecord(episode, events, start, stored_structures(log, start.env).get(start.structure))


def read_episode(log: EventLog, episode: str) -> EpisodeRecord:
    """An episode's record, from its stream."""
    return episode_record(log, episode, [r.event for r in log.read_stream(episode_stream(episode))])
