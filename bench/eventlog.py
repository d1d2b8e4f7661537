"""Event-log append throughput against raw LMDB puts of the same bytes, same run.

The baseline writes exactly the bytes our log writes for the events (encoded records)
with plain `put`s, one transaction per batch, the same sync setting: the ratio is what
the log's bookkeeping (encoding, stream index, head, conflict check) costs.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time

import lmdb

from automem.engine.log.lmdb_log import LmdbLog, u64
from automem.schemas.codec import encode_record
from automem.schemas.events import SCHEMA_VERSION, Record

from .common import step_events


def _raw(path: str, batches: list[list[bytes]], fsync: bool) -> float:
    env = lmdb.open(path, map_size=1 << 34, sync=fsync, metasync=fsync, max_dbs=1)
    db = env.open_db(b"raw")
    offset = 0
    t = time.perf_counter()
    for batch in batches:
        with env.begin(write=True) as txn:
            cursor = txn.cursor(db=db)
            for data in batch:
                cursor.put(u64(offset), data, append=True)
                offset += 1
    elapsed = time.perf_counter() - t
    env.close()
    return elapsed


def _log(path: str, batches: list[list], fsync: bool) -> float:
    log = LmdbLog(path, fsync=fsync)
    seq = 0
    t = time.perf_counter()
    for batch in batches:
        seq = log.append("ep/bench", seq, batch)
    elapsed = time.perf_counter() - t
    log.close()
    return elapsed


def run(steps: int = 2500) -> dict:
    """Both durability modes; `ratio` is the worse of their batched ratios."""
    modes = {name: _run_mode(steps, fsync) for name, fsync in (("fsync", True), ("process", False))}
    return {"name": "eventlog", "backend": "lmdb", "modes": modes,
            "ratio": min(m["batched"]["ratio"] for m in modes.values())}


def _run_mode(steps: int, fsync: bool) -> dict:
    """Append `steps` steps of events, batched per step and one event per append."""
    rng = random.Random(0)
    per_step = [step_events(rng, s) for s in range(steps)]
    events = [e for batch in per_step for e in batch]
    encoded = [encode_record(Record(SCHEMA_VERSION, "ep/bench", i, 0.0, e)) for i, e in enumerate(events)]
    sizes = iter(encoded)
    raw_per_step = [[next(sizes) for _ in batch] for batch in per_step]
    # Unbatched runs one transaction (and with fsync one disk flush) per event: a prefix keeps it short.
    unbatched_n = min(len(events), 2000 if fsync else 20000)
    out: dict = {"fsync": fsync, "events": len(events),
                 "mean_event_bytes": round(sum(map(len, encoded)) / len(encoded)),
                 "events_per_step": round(len(events) / steps, 1)}
    root = tempfile.mkdtemp(prefix="automem-bench-")
    try:
        for mode, log_batches, raw_batches, n in (
            ("batched", per_step, raw_per_step, len(events)),
            ("unbatched", [[e] for e in events[:unbatched_n]], [[b] for b in encoded[:unbatched_n]], unbatched_n),
        ):
            raw_s = _raw(f"{root}/raw-{mode}", raw_batches, fsync)
            log_s = _log(f"{root}/log-{mode}", log_batches, fsync)
            out[mode] = {"events": n, "log_events_per_s": round(n / log_s), "raw_lmdb_events_per_s": round(n / raw_s),
                         "ratio": round(raw_s / log_s, 3)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out
