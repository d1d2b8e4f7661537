"""Snapshots of an episode's memory and time travel: nearest snapshot + tail of the log.

Memory is derived from the episode stream: the MemoryOpApplied events that succeeded,
applied in order. A snapshot every K write-ops (keyed by op position) bounds how much of
the stream a query re-applies, so the memory at any position costs about the same
whether it is asked for at the start or the end of a long episode.
"""

from __future__ import annotations

from typing import Iterator

import lmdb
import msgspec

from automem.engine.log.lmdb_log import LmdbLog, from_u64, u64
from automem.engine.log.port import EventLog
from automem.schemas.codec import UNDECODABLE, CorruptRecord, seal, unseal
from automem.schemas.events import MemoryOpApplied, Recorded
from automem.schemas.streams import episode_stream
from automem.schemas.structure import MemoryLimits

from .reducer import WRITE_KINDS, apply
from .state import EMPTY, MemoryState

DEFAULT_EVERY = 64

# Ops in the log already passed the episode's own limits; re-applying a successful op
# under looser limits gives the same state, so materialising needs no structure. (The one
# limit that changes content, the line cap, is logged as trim ops of its own.)
REPLAY_LIMITS = MemoryLimits(
    max_file_bytes=1 << 40, max_files=1 << 30, max_name_len=1 << 20, name_pattern=r"[^\x00-\x1f\x7f]+",
    allow_subdirs=True,
)


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    position: int  # write-ops applied so far
    seq: int  # stream seq of the last event included (-1: none)
    step: int  # step of that event (-1: none)
    state: MemoryState


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Snapshot)


def encode_snapshot(snap: Snapshot) -> bytes:
    """Sealed with a checksum, like log records: a damaged snapshot is found, never used."""
    return seal(_enc.encode(snap))


def decode_snapshot(raw: bytes, where: str) -> Snapshot:
    try:
        return _dec.decode(unseal(raw, where))
    except UNDECODABLE as exc:
        raise CorruptRecord(where, str(exc)) from None


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


def is_write(ev: object) -> bool:
    """A memory op that changed (or could change) state: the ones memory is derived from."""
    return isinstance(ev, MemoryOpApplied) and ev.ok and ev.op.kind in WRITE_KINDS


def _write_ops(log: EventLog, episode: str, from_seq: int) -> Iterator[tuple[Recorded, MemoryOpApplied]]:
    for rec in log.read_stream(episode_stream(episode), from_seq):
        if is_write(rec.event):
            yield rec, rec.event


START = Snapshot(0, -1, -1, EMPTY)


def advance(cur: Snapshot, rec: Recorded, every: int) -> tuple[Snapshot, Snapshot | None]:
    """Fold one event of an episode stream into its materialised memory.

    Returns the new cursor and, every `every` write-ops, a snapshot to store. Events at or
    before the cursor's seq are skipped, so redelivered events never apply twice.
    """
    if rec.seq <= cur.seq:
        return cur, None
    ev = rec.event
    if not is_write(ev):
        return Snapshot(cur.position, rec.seq, cur.step, cur.state), None
    state, _ = apply(cur.state, ev.op, REPLAY_LIMITS)
    nxt = Snapshot(cur.position + 1, rec.seq, ev.step, state)
    return nxt, nxt if nxt.position % every == 0 else None


def materialize(log: EventLog, store: SnapshotStore, episode: str, every: int = DEFAULT_EVERY) -> int:
    """(Re)build an episode's snapshots from its stream; idempotent. Returns the op count."""
    cur, batch = START, []
    for rec in log.read_stream(episode_stream(episode)):
        cur, snap = advance(cur, rec, every)
        if snap is not None:
            batch.append(snap)
    with store.store.txn(write=True) as txn:
        for snap in batch:
            store.put(episode, snap, txn)
    return cur.position


def _replay_tail(log: EventLog, episode: str, start: Snapshot | None, stop_position: int | None, stop_step: int | None) -> MemoryState:
    """Apply write-ops after `start` until the op position or the step bound is reached."""
    state = start.state if start else EMPTY
    position = start.position if start else 0
    from_seq = start.seq + 1 if start else 0
    for _rec, ev in _write_ops(log, episode, from_seq):
        if stop_position is not None and position >= stop_position:
            break
        if stop_step is not None and ev.step > stop_step:
            break
        state, _ = apply(state, ev.op, REPLAY_LIMITS)
        position += 1
    return state


def memory_at_position(log: EventLog, store: SnapshotStore, episode: str, position: int) -> MemoryState:
    """The memory after the first `position` successful write-ops of the episode."""
    return _replay_tail(log, episode, store.at_or_before(episode, position), position, None)


def memory_after_step(log: EventLog, store: SnapshotStore, episode: str, step: int) -> MemoryState:
    """The memory as it was once step `step` had finished (ops of later steps excluded)."""
    positions = store.positions(episode)
    lo, hi, best = 0, len(positions) - 1, None
    while lo <= hi:  # snapshot steps grow with position: binary search the last one <= step
        mid = (lo + hi) // 2
        snap = store.get(episode, positions[mid])
        if snap is not None and snap.step <= step:
            best, lo = snap, mid + 1
        else:
            hi = mid - 1
    return _replay_tail(log, episode, best, None, step)
