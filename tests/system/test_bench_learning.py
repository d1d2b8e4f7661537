"""`automem bench learning`: the arm runner on its tiny path (random policy, a scripted
reviewer, 2 training steps) returns the documented shape from one shared baseline, and
bench/gpu_learning.py --tiny runs as a script and prints JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from automem.bench import BENCHES
from automem.bench.learning import ARMS, Protocol, run_arms, scripted_reviewer

FAST = {"max_steps": 2, "batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0}
SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_learning.py"


def _check_point(point: dict) -> None:
    assert point["low"] <= point["mean_progression"] <= point["high"], point
    assert point["difference_low"] <= point["difference"] <= point["difference_high"], point


@pytest.mark.slow
def test_four_arms_from_one_reused_baseline(tmp_path: Path, converted_model: Path) -> None:
    p = Protocol(policy="random", reviewer=scripted_reviewer(tmp_path / "reviewer.jsonl"), seeds_per_set=2,
                 max_steps=4, iterations=1, train_steps=2, config=FAST, concurrency=1)
    doc = run_arms(p, root=tmp_path / "stores", say=lambda _line: None)
    assert "learning" in BENCHES and doc["name"] == "learning"
    proto = doc["protocol"]
    assert proto["policy"] == "random" and proto["structure"] == "v0-small" and proto["iterations"] == 1
    sets = [set(proto[k]) for k in ("train_seeds", "select_seeds", "heldout_seeds")]
    assert all(len(s) == 2 for s in sets) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set(doc["arms"]) == set(ARMS) == set(doc["ratio"]) and set(proto["arms"]) == set(ARMS)
    zero = [{k: a["curve"][0][k] for k in ("iteration", "mean_progression", "low", "high", "progression")}
            for a in doc["arms"].values()]
    assert all(z == zero[0] for z in zero) and zero[0]["iteration"] == 0  # the same baseline in every arm
    for name, arm in doc["arms"].items():
        assert arm["baseline_reused"] == 2, name  # the seed store's held-out episodes, not played again
        assert arm["loops"] == list(ARMS[name]) and isinstance(arm["seconds"], float)
        assert [c["iteration"] for c in arm["curve"]] == ([0] if name == "base" else [0, 1])
        for point in arm["curve"]:
            _check_point(point)
        assert arm["curve"][0]["difference"] == 0.0
        ratio = arm["ratio"]
        assert ratio is None if arm["curve"][0]["mean_progression"] == 0 else isinstance(ratio, float)
    assert doc["arms"]["base"]["new_episodes"] == 0 and doc["arms"]["base"]["iterations"] == []
    for name in ("loop1", "loop2", "both"):
        [row] = doc["arms"][name]["iterations"]
        assert row["rollouts_reused"] == 2  # iteration 1's rollouts come from the seed store too
        assert ("loop1" in row) == (1 in ARMS[name]) and ("loop2" in row) == (2 in ARMS[name])
    assert doc["arms"]["loop1"]["proposals"] == 1 and doc["arms"]["loop1"]["invalid_proposals"] == 0
    assert doc["arms"]["loop2"]["iterations"][0]["loop2"]["candidate"].startswith("mem-")
    assert isinstance(doc["finding"], str) and doc["finding"]
    assert {"seed_store", "total", *ARMS} <= set(doc["seconds"])
    assert json.loads(json.dumps(doc)) == doc


@pytest.mark.slow
def test_the_gpu_script_tiny_path_runs_as_a_script(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--arms", "base,loop1"], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["name"] == "gpu_learning(tiny)" and set(doc["arms"]) == {"base", "loop1"}
    assert doc["protocol"]["policy"] == "random" and doc["protocol"]["reviewer"].startswith("file:")
    assert all(a["baseline_reused"] == 2 for a in doc["arms"].values())
    bad = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and "--endpoint and --model" in bad.stderr
