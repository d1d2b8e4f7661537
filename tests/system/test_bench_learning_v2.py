"""`automem bench learning-v2`: loop 2's ablation on its tiny path (the random agent, the
embedded model as the trained memory model, one training step per arm) returns the
documented shape: every arm from the same rollouts, paired with the same base episodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automem.bench import BENCHES
from automem.bench.learning_v2 import Protocol, run_protocol
from automem.engine.dataset.build import PROBES
from automem.engine.probes.credit import RULE
from automem.schemas.errors import UserError

FAST = {"batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0}


def test_a_protocol_that_judges_arms_on_training_seeds_is_refused() -> None:
    with pytest.raises(UserError, match=r"held-out seeds \[1001\] are also training seeds"):
        Protocol(train_seeds=(1000, 1001), heldout_seeds=(1001, 3000)).check()
    with pytest.raises(UserError, match="rollout budget"):
        Protocol(rollout_budget=2).check()
    assert PROBES == RULE  # the dataset's name for probe credit is the probes' rule


@pytest.mark.slow
def test_every_arm_from_one_set_of_rollouts(tmp_path: Path, converted_model: Path) -> None:
    # the random agent earns no credit above 0 in 3 steps: the scored arm keeps what the rules did not penalise
    p = Protocol(policy="random", max_steps=3, train_seeds=(1000, 1001), heldout_seeds=(3000, 3001), min_examples=4,
                 min_score=0.0, rollout_budget=4, train_steps=1, config=FAST, concurrency=1)
    doc = run_protocol(p, root=tmp_path / "bench", say=lambda _line: None)
    assert "learning-v2" in BENCHES and doc["name"] == "learning-v2"
    assert doc["protocol"]["structure_version"].startswith("crafter-v0-small-lookup-")
    assert doc["primary"] in ("probe_accuracy", "true_claim_share")
    rollouts = doc["rollouts"]
    assert rollouts["stopped"] in ("minimum", "budget") and rollouts["seeds"][:2] == [1000, 1001]
    assert len(set(rollouts["seeds"])) == rollouts["episodes"] <= 4
    arms = doc["arms"]
    assert set(arms) == {"base", "scored", "random", "all", "probe"}
    base = arms["base"]
    assert len(base["episodes"]) == 2 and "vs_base" not in base
    for name in ("scored", "random", "all"):
        arm = arms[name]
        assert arm["trained"]["model_version"].startswith("mem-") and arm["trained"]["steps"] == 1
        assert len(arm["episodes"]) == 2 and arm["episodes"] != base["episodes"]
        assert set(arm["vs_base"]) <= set(arm["figures"]) and "progression" in arm["vs_base"]
        for figure in (*arm["figures"].values(), *arm["vs_base"].values()):
            assert figure["low"] <= figure["mean"] <= figure["high"], (name, figure)
        assert ("vs_random" in arm) == (name != "random" and "vs_base" in arms["random"])
        assert 0 <= arm["moved"]["differ"] <= arm["moved"]["compared"]
    # the same size as the scored selection, drawn from the same rollouts
    assert arms["random"]["dataset"]["examples"] == arms["scored"]["dataset"]["examples"] > 0
    assert doc["protocol"]["selections"]["random"]["sample"] == arms["scored"]["dataset"]["examples"]
    assert arms["all"]["dataset"]["examples"] >= arms["scored"]["dataset"]["examples"]
    assert arms["probe"].get("skipped") or arms["probe"]["dataset"]["examples"] > 0
    assert isinstance(doc["finding"], str) and doc["finding"].split(";")[0]
    assert {"base held-out", "rollouts", "datasets", "total"} <= set(doc["seconds"])
    assert json.loads(json.dumps(doc)) == doc


def test_the_gpu_script_takes_the_v2_protocol(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "bench" / "gpu_learning.py"
    bad = subprocess.run([sys.executable, str(script), "--v2", "--heldout", "5"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "--endpoint and --model" in bad.stderr
