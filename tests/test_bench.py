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


def test_eventlog_bench_on_kafka_shape(broker) -> None:
    out = eventlog.run_bus(f"kafka://{broker.url}", steps=20)
    assert out["events"] == 160 and out["ratio"] > 0
    for backend in ("lmdb", "kafka"):
        assert {"produce_events_per_s", "consume_events_per_s", "materializer_events_per_s"} <= set(out[backend])


def test_overhead_bench_shape() -> None:
    from automem.bench import overhead

    out = overhead.run("minihack", steps=200, repeat=1)
    assert out["steps"] >= 200 and out["events"] > out["steps"] and out["ratio"] > 0
