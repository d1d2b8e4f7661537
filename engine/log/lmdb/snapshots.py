"""Memory snapshots kept beside the events in an embedded store's `snapshots` database."""

from __future__ import annotations

import lmdb

from automem.engine.log.lmdb.log import LmdbLog, from_u64, u64
from automem.engine.memory.snapshot import Snapshot, decode_snapshot, encode_snapshot
from automem.schemas.codec import CorruptRecord


class SnapshotStore:
    """Snapshots in an embedded store's `snapshots` database, keyed episode \\0 u64(position).

    The store is always local LMDB, whichever backend carries the events: snapshots are
    derived state, next to the consumer positions they were built up to.
    """

    def __init__(self, store: LmdbLog) -> None:
        self.store = store
        self.db = store.dbs["snapshots"]

    @staticmethod
    def _key(episode: str, position: int) -> bytes:
        return episode.encode("utf-8") + b"\x00" + u64(position)

    def put(self, episode: str, snap: Snapshot, txn: lmdb.Transaction | None = None) -> None:
        if txn is not None:
            txn.put(self._key(episode, snap.position), encode_snapshot(snap), db=self.db)
            return
        with self.store.txn(write=True) as own:
            own.put(self._key(episode, snap.position), encode_snapshot(snap), db=self.db)

    def at_or_before(self, episode: str, position: int) -> Snapshot | None:
        prefix = episode.encode("utf-8") + b"\x00"
        with self.store.txn() as txn:
            cursor = txn.cursor(db=self.db)
            if cursor.set_range(self._key(episode, position + 1)):
                found = cursor.prev()
            else:
                found = cursor.last()
            if not found or not cursor.key().startswith(prefix):
                return None
            return self._load(episode, cursor.key(), cursor.value())

    def positions(self, episode: str) -> list[int]:
        return [from_u64(key[-8:]) for key in self.store.keys_with_prefix(self.db, episode.encode("utf-8") + b"\x00")]

    def get(self, episode: str, position: int) -> Snapshot | None:
        raw = self.store.get(self._key(episode, position), self.db)
        return None if raw is None else self._load(episode, self._key(episode, position), raw)

    def _load(self, episode: str, key: bytes, raw: bytes) -> Snapshot | None:
        """A snapshot, or None when it is damaged: it is derived state, the log is replayed instead."""
        try:
            return decode_snapshot(raw, f"{self.store.path} snapshot of {episode} at op {from_u64(key[-8:])}")
        except CorruptRecord:
            return None
