"""`automem loop run --bus kafka://`: the loop as a driver against the real Tansu broker, with
a rollout worker, the scorer and the trainer as separate processes (toy scale: random agent,
a scripted reviewer, two optimizer steps). First without a trainer: the train stage fails
with one line and what was done stays done; then with one: the same command resumes at
train and finishes; a third start does nothing."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from automem.engine.log import open_log
from automem.schemas.events import LoopStageDone, ModelVersionCreated, RolloutRequested

from ..support.broker import Broker
from ..support.loop import CLI, _reviewer, kafka_stores, service


@pytest.mark.slow
def test_the_driver_on_kafka_with_worker_scorer_and_trainer_processes(broker: Broker, tmp_path: Path,
                                                                       converted_model: Path) -> None:
    bus = f"kafka://{broker.url}/l{uuid.uuid4().hex[:8]}"
    driver, trainer, env = kafka_stores(tmp_path)
    env["AUTOMEM_TRAIN_DISTILL"] = "1"
    loop = [*CLI, "loop", "run", "--bus", bus, "--data", str(driver), "--id", "toy", "--policy", "random",
            "--structure", "v0-small", "--reviewer", _reviewer(tmp_path / "reviewer.jsonl"), "--episodes", "2",
            "--max-steps", "4", "--min-examples", "0", "--json"]
    services = [service(["worker", "--bus", bus, "--data", str(trainer), "--concurrency", "2"], env,
                         tmp_path / "worker.log"),
                service(["consume", "scorer", "--bus", bus, "--data", str(tmp_path / "scorer")], env,
                         tmp_path / "scorer.log")]
    try:
        # --wait bounds every stage's wait: long enough for a worker that is still starting (its
        # group join, a game's first import) on a loaded machine, short for the trainer that never comes
        early = subprocess.run([*loop, "--wait", "30"], capture_output=True, text=True, timeout=600, env=env)
        assert early.returncode == 2, early.stderr
        last = early.stderr.strip().splitlines()[-1]
        assert "stage train of iteration 1 failed" in last and "automem consume trainer" in last, early.stderr
        services.append(service(["consume", "trainer", "--bus", bus, "--data", str(trainer)], env,
                                 tmp_path / "trainer.log"))
        done = subprocess.run([*loop, "--wait", "300"], capture_output=True, text=True, timeout=900, env=env)
        assert done.returncode == 0, done.stderr + (tmp_path / "trainer.log").read_text()[-2000:]
        doc = json.loads(done.stdout)
        assert doc["ran"] == ["1:train", "1:evaluate", "1:report", "1:finish"]  # resumed where it failed
        [row] = doc["iterations"]
        assert row["status"] == "finished" and row["candidate_model"].startswith("mem-")
        again = subprocess.run([*loop, "--wait", "30"], capture_output=True, text=True, timeout=300, env=env)
        assert again.returncode == 0 and json.loads(again.stdout)["ran"] == [], again.stderr
    finally:
        for proc in services:
            proc.kill()
            proc.wait()
    with open_log(bus) as log:
        stages = [r.event for r in log.read_stream("loop/toy") if isinstance(r.event, LoopStageDone)]
        assert [e.stage for e in stages] == ["baseline", "rollouts", "scores", "loop1", "dataset", "train", "evaluate",
                                             "report"]
        versions = [r.event for s in log.streams("model") for r in log.read_stream(s)
                    if isinstance(r.event, ModelVersionCreated)]
        assert len(versions) == 1 and versions[0].name == row["candidate_model"]
        # every episode the loop used was played by the worker, under an id derived from its request
        requested = [r.event.request_id for s in log.streams("rollout") for r in log.read_stream(s)
                     if isinstance(r.event, RolloutRequested)]
        used = {e for stage in stages for e in stage.episodes}
        assert used and all(e.rsplit("-a", 1)[0] in requested for e in used)
        assert len(requested) == len(set(requested))  # three starts, and no request asked for twice
    refused = subprocess.run([*loop, "--train-steps", "3"], capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2 and "trains with its own settings" in refused.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_broker_gone_mid_stage_stops_the_driver_in_one_line(tmp_path: Path) -> None:
    """The driver waits for workers that never come; the broker dies under it: exit 2, one line."""
    own = Broker().start()  # its own broker: the session's must survive
    bus = f"kafka://{own.url}/g{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([*CLI, "loop", "run", "--bus", bus, "--data", str(tmp_path / "d"), "--policy", "random",
                             "--structure", "v0-small", "--loops", "2", "--episodes", "1", "--max-steps", "3",
                             "--wait", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until its first request is on the bus: the baseline waits for workers
            with open_log(bus) as log:
                if log.streams("rollout"):
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("the driver never asked for a rollout")
        own.stop()
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
        own.stop()
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert "Kafka broker" in lines[-1] and "stage baseline of iteration 1 failed" in lines[-1], err
