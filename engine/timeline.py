"""Step-level facts about an episode stream that several commands need."""

from __future__ import annotations

from automem.schemas.streams import episode_stream

from .log.port import EventLog


def last_step(log: EventLog, episode: str) -> int:
    """The highest step number recorded in the episode (-1 when no step event exists)."""
    stream = episode_stream(episode)
    for seq in range(log.head(stream) - 1, -1, -1):
        event = next(iter(log.read_stream(stream, seq))).event
        step = getattr(event, "step", None)
        if isinstance(step, int):
            return step
    return -1
