"""The scorer as a service: memory decisions scored while rollouts run.

A decision is written when it can no longer change (the steps after it that its credit
reads have been taken, or its episode ended), so what this consumer writes equals what
`automem score` writes over the finished log. Scoring reads the episode from the log and
appends only the decisions its score stream lacks: a redelivered batch, a restart after
SIGKILL, or a batch `automem score` running beside it never writes one twice.
"""

from __future__ import annotations

import itertools

from automem.consumers.runtime import Batch
from automem.engine.log.port import EventLog
from automem.engine.scoring import Params, score_episode
from automem.schemas.events import AnyEvent, EpisodeAbandoned, EpisodeEnded, Recorded, StepTaken
from automem.schemas.streams import episode_of

EVERY = 25  # the fewest steps between two rescorings of a running episode


class Scorer:
    """Rescores a running episode once it has `every` more steps, or a quarter more than at
    its last rescoring, whichever is more: each rescoring reads the whole episode, so the
    geometric spacing keeps a long episode's total cost linear; scores of a running
    episode trail its newest final step by at most that much. An ended episode is scored
    at once, completely."""

    name = "scorer"
    families = ("ep",)

    def __init__(self, params: Params = Params(), every: int = EVERY) -> None:
        self.params, self.every = params, every
        self._scored_at: dict[str, int] = {}  # scheduling only: results never depend on it
        self._events: dict[str, list[AnyEvent]] = {}  # running episodes, as delivered (a prefix of each stream)

    def _follow(self, log: EventLog, rec: Recorded) -> list[AnyEvent]:
        """The episode's events up to `rec`; after a restart the prefix before it is read back once."""
        episode = episode_of(rec.stream)
        held = self._events.setdefault(episode, [])
        if rec.seq > len(held):
            held[:] = [r.event for r in itertools.islice(log.read_stream(rec.stream), rec.seq)]
        if rec.seq == len(held):
            held.append(rec.event)
        return held

    def emit(self, records: list[Recorded], log: EventLog) -> None:
        newest: dict[str, int] = {}
        ended: set[str] = set()
        for rec in records:
            self._follow(log, rec)
            e, episode = rec.event, episode_of(rec.stream)
            if isinstance(e, StepTaken):
                newest[episode] = max(e.step, newest.get(episode, -1))
            elif isinstance(e, (EpisodeEnded, EpisodeAbandoned)):
                ended.add(episode)
                newest.setdefault(episode, -1)
        for episode, step in newest.items():
            last = self._scored_at.get(episode, -1)
            if episode in ended or step - last >= max(self.every, last // 4):
                score_episode(log, episode, self.params, self._events[episode])
                self._scored_at[episode] = step
            if episode in ended:
                del self._events[episode], self._scored_at[episode]

    def handle(self, records: list[Recorded], batch: Batch) -> None:
        """Scores live in the log; the store keeps only the position."""
