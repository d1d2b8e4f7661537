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


def test_replay_bench_shape() -> None:
    from automem.bench import replay

    out = replay.run("minihack", steps=100, repeat=1, long_steps=300, every=16)
    assert out["name"] == "replay" and out["steps"] >= 100 and out["episodes"] >= 1
    assert out["ratio"] > 0 and out["replay_steps_per_s"] > 0 and out["bare_steps_per_s"] > 0
    mem = out["memory_at_step"]
    assert 0 < mem["steps"] <= 300 and mem["events"] > mem["steps"] and mem["snapshots"] >= 1
    assert set(mem["latency_ms"]) == set(mem["at_step"]) == {"start", "middle", "end"}
    assert mem["at_step"]["start"] == 0 and mem["at_step"]["end"] == mem["steps"] - 1
    assert all(v > 0 for v in mem["latency_ms"].values()) and mem["flatness"] > 0
