"""Benchmarks produce their documented figures (never asserting wall-clock speed)."""

from __future__ import annotations

from automem.bench import eventlog, memory


def test_eventlog_bench_shape() -> None:
    out = eventlog.run(steps=50)
    assert out["name"] == "eventlog" and set(out["modes"]) == {"fsync", "process"}
    for mode in out["modes"].values():
        assert mode["mean_event_bytes"] > 500
        for kind in ("batched", "unbatched"):
            assert mode[kind]["ratio"] > 0 and mode[kind]["log_events_per_s"] > 0


def test_memory_bench_shape() -> None:
    out = memory.run(ops=600, every=32)
    assert out["name"] == "memory" and out["ops"] == 600
    assert set(out["snapshot_ms"]) == set(out["full_replay_ms"]) == {"start", "quarter", "middle", "three_quarters", "end"}
    assert out["ratio"] > 0
