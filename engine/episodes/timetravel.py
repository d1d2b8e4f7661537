"""Time travel: an episode's memory at any op position or after any step, from the
nearest stored snapshot plus the tail of the log, so a query costs about the same at the
start or the end of a long episode."""

from __future__ import annotations

from typing import Iterator

from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.log.port import EventLog
from automem.engine.memory.reducer import apply
from automem.engine.memory.snapshot import (
    DEFAULT_EVERY,
    REPLAY_LIMITS,
    START,
    Snapshot,
    advance,
    is_write,
)
from automem.engine.memory.state import EMPTY, MemoryState
from automem.schemas.events import MemoryOpApplied, Recorded
from automem.schemas.streams import episode_stream


def _write_ops(log: EventLog, episode: str, from_seq: int) -> Iterator[tuple[Recorded, MemoryOpApplied]]:
    for rec in log.read_stream(episode_stream(episode), from_seq):
        if is_write(rec.event):
            yield rec, rec.event


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
