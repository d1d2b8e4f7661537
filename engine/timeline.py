"""Step-level facts about an episode stream that several commands need."""

from __future__ import annotations

from automem.schemas.events import StepTaken
from automem.schemas.streams import episode_stream

from .log.port import EventLog


def last_step(log: EventLog, episode: str) -> int:
    """The last step the episode took (-1 when none): a failed model call of a later step
    does not count, its step was never taken."""
    stream = episode_stream(episode)
    for seq in range(log.head(stream) - 1, -1, -1):
        event = next(iter(log.read_stream(stream, seq))).event
        if isinstance(event, StepTaken):
            return event.step
    return -1
