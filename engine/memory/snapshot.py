"""An episode's memory folded event by event, with a checkpoint every K write-ops.

Memory is derived from the episode stream: the MemoryOpApplied events that succeeded,
applied in order. A snapshot every K write-ops (keyed by op position) bounds how much of
the stream a query re-applies. This module is the pure fold and the snapshot's sealed
codec; where snapshots are kept is the LMDB backend's (engine/log/lmdb/snapshots.py) and
time travel over them is engine/episodes/timetravel.py.
"""

from __future__ import annotations

from typing import TypeGuard

import msgspec

from automem.engine.memory.reducer import WRITE_KINDS, apply
from automem.engine.memory.state import EMPTY, MemoryState
from automem.schemas.codec import UNDECODABLE, CorruptRecord, seal, unseal
from automem.schemas.events import MemoryOpApplied, Recorded
from automem.schemas.structure import MemoryLimits

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


def is_write(ev: object) -> TypeGuard[MemoryOpApplied]:
    """A memory op that changed (or could change) state: the ones memory is derived from."""
    return isinstance(ev, MemoryOpApplied) and ev.ok and ev.op.kind in WRITE_KINDS


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
