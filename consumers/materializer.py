"""The materializer: each episode's memory, folded from its stream into local snapshots.

It keeps one cursor per episode (the memory after the last event it applied) next to the
snapshots, all in the consumer's transaction; `automem memory` then reads from them.
"""

from __future__ import annotations

import lmdb

from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
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

    def cursor(self, store: LmdbLog, episode: str, txn: lmdb.Transaction | None = None) -> Snapshot:
        key = self.cursor_key(episode)
        raw = store.get(key, store.dbs["meta"]) if txn is None else txn.get(key, db=store.dbs["meta"])
        return decode_snapshot(raw, f"{store.path} materializer cursor of {episode}") if raw else START

    def emit(self, records: list[Recorded], log: EventLog) -> None:
        """Snapshots are local derived state: nothing goes to the log."""

    def handle(self, records: list[Recorded], txn: lmdb.Transaction, store: LmdbLog) -> None:
        snapshots = SnapshotStore(store)
        cursors: dict[str, Snapshot] = {}
        for rec in records:
            episode = episode_of(rec.stream)
            cur = cursors.get(episode) or self.cursor(store, episode, txn)
            cur, snap = advance(cur, rec, self.every)
            cursors[episode] = cur
            if snap is not None:
                snapshots.put(episode, snap, txn)
        for episode, cur in cursors.items():
            txn.put(self.cursor_key(episode), encode_snapshot(cur), db=store.dbs["meta"])
