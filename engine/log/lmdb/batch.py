"""One write transaction of the local store, as a consumer sees it (consumers.runtime.Batch).

What a consumer derives from a batch of records (memory snapshots, its own cursors) and
the position it consumed them up to go into this one transaction: they commit together
or not at all, so a crash can never leave them out of step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import lmdb

from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.memory.snapshot import Snapshot


class StoreBatch:
    def __init__(self, store: LmdbLog, txn: lmdb.Transaction) -> None:
        self.store, self.txn, self.path = store, txn, store.path
        self._meta = store.dbs["meta"]
        self._snapshots = SnapshotStore(store)

    @classmethod
    @contextmanager
    def write(cls, store: LmdbLog) -> Iterator[StoreBatch]:
        """A batch over a new write transaction, committed when the block ends without error."""
        with store.txn(write=True) as txn:
            yield cls(store, txn)

    def meta(self, key: bytes) -> bytes | None:
        raw = self.txn.get(key, db=self._meta)
        return None if raw is None else bytes(raw)

    def put_meta(self, key: bytes, value: bytes) -> None:
        self.txn.put(key, value, db=self._meta)

    def put_snapshot(self, episode: str, snap: Snapshot) -> None:
        self._snapshots.put(episode, snap, self.txn)

    def save_position(self, consumer: str, token: bytes) -> None:
        self.store.save_position(consumer, token, self.txn)
