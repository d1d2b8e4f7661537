"""The scorer as a service: memory decisions scored while rollouts run.

A decision is written when it can no longer change (the steps after it that its credit
reads have been taken, or its episode ended), so what this consumer writes equals what
`automem score` writes over the finished log. Scoring reads the episode from the log and
appends only the decisions its score stream lacks: a redelivered batch, a restart after
SIGKILL, or a batch `automem score` running beside it never writes one twice.
"""

from __future__ import annotations

import lmdb

from automem.engine.log.lmdb_log import LmdbLog
from automem.engine.log.port import EventLog
from automem.engine.scoring import Params, score_episode
from automem.schemas.events import EpisodeEnded, Recorded, StepTaken

EVERY = 25  # steps between rescorings of a running episode (its finished part only)


class Scorer:
    name = "scorer"
    families = ("ep",)

    def __init__(self, params: Params = Params(), every: int = EVERY) -> None:
        self.params, self.every = params, every

    def emit(self, records: list[Recorded], log: EventLog) -> None:
        due: list[str] = []
        for rec in records:
            e = rec.event
            if isinstance(e, EpisodeEnded) or (isinstance(e, StepTaken) and e.step % self.every == self.every - 1):
                episode = rec.stream.split("/", 1)[1]
                if episode not in due:
                    due.append(episode)
        for episode in due:
            score_episode(log, episode, self.params)

    def handle(self, records: list[Recorded], txn: lmdb.Transaction, store: LmdbLog) -> None:
        """Scores live in the log; the store keeps only the position."""
