"""Benchmarks produce their documented figures (never asserting wall-clock speed)."""

from __future__ import annotations

import pytest

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


def test_rollout_bench_shape() -> None:
    from automem.bench import rollout

    out = rollout.run(env="minihack", policy="random", concurrency=(1, 3), steps=5, episodes=3)
    assert out["name"] == "rollout" and [lv["concurrency"] for lv in out["levels"]] == [1, 3]
    for level in out["levels"]:
        assert level["steps"] == 15 and level["steps_per_s"] > 0 and level["steps_ratio"] > 0
        assert level["same_as_alone"] == 3  # the seeded random agent: in flight or alone, the same answers
    assert "bare_generate" not in out  # only the embedded model has a generate to compare with


def test_gpu_rollout_script_runs_its_tiny_config_on_the_cpu() -> None:
    """The GPU script's whole path (random-weight model, byte tokenizer, sessions, batches,
    bare generate) on a tiny config, as it runs on a machine without a GPU."""
    from automem.bench import gpu_rollout

    out = gpu_rollout.run(levels=(1, 2), rounds=1, new_tokens=4)
    assert out["device"] == "cpu" and [lv["concurrency"] for lv in out["levels"]] == [1, 2]
    assert all(lv["tokens_per_s"] > 0 and lv["of_bare_generate"] > 0 and lv["prompt_tokens"] > 1000
               for lv in out["levels"])


@pytest.mark.slow
def test_probe_bench_shape(converted_model) -> None:
    from automem.bench import probe

    out = probe.run(episodes=1, steps=30, every=15)
    assert out["name"] == "probe" and len(out["episodes"]) == 1 and out["steps"] == 30
    assert out["random_probes_per_s"] >= 0 and out["local_probes_per_s"] >= 0 and out["rebuild_s"] > 0
    assert set(out["accuracy"]) == {"memory", "control"} and out["failed"] == 0
    assert all(a["n"] == out["accuracy"]["memory"]["n"] for a in out["accuracy"].values())
