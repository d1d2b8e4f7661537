"""Memory time travel: memory-at-position from snapshots vs full replay from op zero.

A 10,000-op episode is written to a fresh store and materialised with snapshots every
K ops; then the memory at several positions is computed both ways, in the same run.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from typing import Callable

from automem.bench.common import best_of, text
from automem.engine.episodes.timetravel import (
    _replay_tail,
    materialize,
    memory_at_position,
)
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.memory.snapshot import DEFAULT_EVERY
from automem.schemas.events import MemoryOp, MemoryOpApplied

FILES = ("map_notes.txt", "crafting_progress.txt", "survival_log.txt", "actions_log.txt", "strategy.txt")


def synthetic_ops(n: int, seed: int = 0) -> list[MemoryOp]:
    """A realistic mix: mostly appends, some rewrites, map upserts; files stay bounded."""
    rng = random.Random(seed)
    ops = []
    for i in range(n):
        name = rng.choice(FILES)
        r = rng.random()
        if r < 0.6:
            ops.append(MemoryOp("append", name, (f"step {i}: {text(rng, 12)}",)))
        elif r < 0.8:
            ops.append(MemoryOp("upsert", "map_notes.txt", (f"{rng.randrange(64)},{rng.randrange(64)}", text(rng, 5))))
        else:
            ops.append(MemoryOp("write", name, (text(rng, 60),)))
    return ops


def latencies_ms(points: dict[str, int], query: Callable[[int], object], repeat: int = 5) -> dict[str, float]:
    """Best-of-`repeat` milliseconds of `query(point)` for each named point."""
    return {name: 1000 * best_of(lambda p=p: query(p), repeat) for name, p in points.items()}


def run(ops: int = 10_000, every: int = DEFAULT_EVERY, steps_per_op: int = 1) -> dict:
    root = tempfile.mkdtemp(prefix="automem-bench-")
    try:
        log = LmdbLog(root, fsync=False)
        events = [MemoryOpApplied(step=i // steps_per_op, phase="log", turn=0, op=op, ok=True, result_digest="")
                  for i, op in enumerate(synthetic_ops(ops))]
        seq = 0
        for i in range(0, len(events), 100):
            seq = log.append("ep/bench", seq, events[i:i + 100])
        store = SnapshotStore(log)
        materialize(log, store, "bench", every)
        points = {"start": 10, "quarter": ops // 4, "middle": ops // 2, "three_quarters": 3 * ops // 4, "end": ops}
        snap_ms = latencies_ms(points, lambda p: memory_at_position(log, store, "bench", p))
        full_ms = latencies_ms(points, lambda p: _replay_tail(log, "bench", None, p, None), repeat=3)
        assert memory_at_position(log, store, "bench", ops).digest() == _replay_tail(log, "bench", None, ops, None).digest()
        log.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "name": "memory", "ops": ops, "snapshot_every": every,
        "snapshot_ms": {k: round(v, 3) for k, v in snap_ms.items()},
        "full_replay_ms": {k: round(v, 3) for k, v in full_ms.items()},
        "flatness": round(max(snap_ms.values()) / min(snap_ms.values()), 2),
        "ratio": round(full_ms["end"] / snap_ms["end"], 1),
    }
