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

from automem.bench.common import step_events
from automem.engine.log.lmdb.log import LmdbLog, u64
from automem.schemas.codec import encode_record
from automem.schemas.events import SCHEMA_VERSION, Record


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


def _produce_consume(log, per_step: list[list]) -> tuple[float, float, int]:
    """Append every step batch to a fresh stream, then read all back through a subscription."""
    t = time.perf_counter()
    seq = 0
    for batch in per_step:
        seq = log.append("ep/bench", seq, batch)
    produce_s = time.perf_counter() - t
    sub = log.subscribe(("ep",))
    got = 0
    t = time.perf_counter()
    while got < seq:
        got += len(sub.poll(max_records=2000, timeout_s=1.0))
    consume_s = time.perf_counter() - t
    sub.close()
    return produce_s, consume_s, seq


def _catch_up(log, root: str) -> float:
    """Materializer events/s over the stream just written, into a fresh local store."""
    from automem.consumers.materializer import Materializer
    from automem.consumers.runtime import run_consumer

    with LmdbLog(f"{root}/materializer", fsync=False) as store:
        stats = run_consumer(Materializer(), log, store, until_idle=True, poll_s=0.5, report_every_s=1e9)
    return stats.events / max(stats.seconds, 1e-9)


def run_bus(bus: str, steps: int = 1000) -> dict:
    """Produce and consume throughput of step events on `bus`, against the embedded LMDB
    backend in the same run; plus the materializer's catch-up rate on each."""
    import uuid

    from automem.engine.log import open_log

    rng = random.Random(0)
    per_step = [step_events(rng, s) for s in range(steps)]
    root = tempfile.mkdtemp(prefix="automem-bench-")
    scheme, _, rest = bus.partition("://")
    if scheme == "kafka":  # fresh topics of our own, never a user's
        target = f"kafka://{rest.split('/', 1)[0]}/bench{uuid.uuid4().hex[:8]}"
    else:  # a fresh store of our own, never the user's
        target = f"lmdb://{root}/bus"
    out: dict = {"name": "eventlog", "bus": bus, "steps": steps, "events": sum(map(len, per_step))}
    try:
        for name, url in (("lmdb", f"lmdb://{root}/lmdb"), (scheme, target)):
            with open_log(url) as log:
                produce_s, consume_s, n = _produce_consume(log, per_step)
                out[name] = {"produce_events_per_s": round(n / produce_s), "consume_events_per_s": round(n / consume_s),
                             "materializer_events_per_s": round(_catch_up(log, f"{root}/{name}"))}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if scheme != "lmdb":
        out["produce_ratio_vs_lmdb"] = round(out[scheme]["produce_events_per_s"] / out["lmdb"]["produce_events_per_s"], 3)
        out["consume_ratio_vs_lmdb"] = round(out[scheme]["consume_events_per_s"] / out["lmdb"]["consume_events_per_s"], 3)
        out["ratio"] = out["produce_ratio_vs_lmdb"]
    return out
