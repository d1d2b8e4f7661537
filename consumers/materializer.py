"""The materializer: each episode's memory, folded from its stream into local snapshots.

It keeps one cursor per episode (the memory after the last event it applied) next to the
snapshots, all in the consumer's batch; `automem memory` then reads from them.
"""

from __future__ import annotations

from automem.consumers.runtime import Batch, State
from automem.engine.log.port import EventLog
from automem.engine.memory.snapshot import (
    DEFAULT_EVERY,
    START,
    Snapshot,
    advance,
    decode_snapshot,
    encode_snapshot,
)
from automem.schemas.events import Recorded
from automem.schemas.streams import episode_of


class Materializer:
    name = "materializer"
    families = ("ep",)

    def __init__(self, every: int = DEFAULT_EVERY) -> None:
        self.every = every

    @staticmethod
    def cursor_key(episode: str) -> bytes:
        return b"materializer/" + episode.encode("utf-8")

    def cursor(self, state: State, episode: str) -> Snapshot:
        raw = state.meta(self.cursor_key(episode))
        return decode_snapshot(raw, f"{state.path} materializer cursor of {episode}") if raw else START

    def emit(self, records: list[Recorded], log: EventLog) -> None:
        """Snapshots are local derived state: nothing goes to the log."""

    def handle(self, records: list[Recorded], batch: Batch) -> None:
        cursors: dict[str, Snapshot] = {}
        for rec in records:
            episode = episode_of(rec.stream)
            cur = cursors.get(episode) or self.cursor(batch, episode)
            cur, snap = advance(cur, rec, self.every)
            cursors[episode] = cur
            if snap is not None:
                batch.put_snapshot(episode, snap)
        for episode, cur in cursors.items():
            batch.put_meta(self.cursor_key(episode), encode_snapshot(cur))
