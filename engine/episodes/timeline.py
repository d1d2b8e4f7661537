"""Step-level facts about an episode stream that several commands need."""

from __future__ import annotations

from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError
from automem.schemas.events import StepTaken
from automem.schemas.streams import episode_stream


def last_step(log: EventLog, episode: str) -> int:
    """The last step the episode took (-1 when none): a failed model call of a later step
    does not count, its step was never taken."""
    stream = episode_stream(episode)
    for seq in range(log.head(stream) - 1, -1, -1):
        event = next(iter(log.read_stream(stream, seq))).event
        if isinstance(event, StepTaken):
            return event.step
    return -1


def steps_taken(episode: str, final: int) -> str:
    """How a message names the steps an episode has (`final` from last_step)."""
    return f"steps 0..{final}" if final >= 0 else "no step yet (it took none)"


def check_step(episode: str, final: int, step: int, what: str = "step") -> None:
    """A step an episode has, or a one-line error naming the ones it has."""
    if not 0 <= step <= final:
        raise UserError(f"{what} {step} is out of range for {episode}: it has {steps_taken(episode, final)}")
