"""The materializer consumer: killed at any point and restarted, it converges to a clean run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from automem.consumers.materializer import Materializer
from automem.consumers.runtime import position_key, run_consumer
from automem.engine.episodes.timetravel import materialize, memory_after_step
from automem.engine.log import LmdbLog, open_log
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.events import StepTaken

from ..support.broker import Broker


def snapshots_of(store: LmdbLog) -> dict[bytes, bytes]:
    with store.env.begin() as txn:
        return {bytes(k): bytes(v) for k, v in txn.cursor(db=store.dbs["snapshots"])}


def consume(bus: str, data: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from automem.engine.cli import main; main()", "consume",
                             "materializer", "--until-idle", "--snapshot-every", "4", "--bus", bus, "--data", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(params=["lmdb", "kafka"])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "lmdb":
        return f"lmdb://{tmp_path / 'bus'}"
    broker: Broker = request.getfixturevalue("broker")
    return f"kafka://{broker.url}/m{uuid.uuid4().hex[:8]}"


@pytest.mark.slow
def test_killed_and_restarted_materializer_converges(bus: str, tmp_path: Path) -> None:
    episodes = run(RunRequest(env="minihack", task=None, episodes=3, max_steps=40, seed=1, policy="random", bus=bus,
                              data=str(tmp_path / "runner")))
    # the reference: a clean, uninterrupted materialisation into a fresh store
    with open_log(bus) as log, LmdbLog(tmp_path / "clean") as clean:
        for s in episodes:
            materialize(log, SnapshotStore(clean), s.id, every=4)
        expected = snapshots_of(clean)
    assert len(expected) >= 10
    data = tmp_path / "consumer"
    rng = random.Random(7)
    for _ in range(4):  # killed at random points, then restarted
        proc = consume(bus, data)
        time.sleep(rng.uniform(0.5, 2.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    proc = consume(bus, data)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode() if proc.stderr else ""
    with LmdbLog(data) as store:
        assert snapshots_of(store) == expected
        with open_log(bus) as log:  # and memory queries from that store are exact
            for s in episodes:
                for rec in log.read_stream(f"ep/{s.id}"):
                    if isinstance(rec.event, StepTaken) and rec.event.step % 7 == 0:
                        got = memory_after_step(log, SnapshotStore(store), s.id, rec.event.step)
                        assert got.digest() == rec.event.memory_digest


@pytest.mark.slow
def test_sigterm_stops_gracefully_and_resumes(tmp_path: Path) -> None:
    bus = f"lmdb://{tmp_path / 'bus'}"
    run(RunRequest(env="crafter", task=None, episodes=1, max_steps=30, seed=0, policy="random", bus=bus))
    proc = subprocess.Popen([sys.executable, "-c", "from automem.engine.cli import main; main()", "consume",
                             "materializer", "--bus", bus, "--data", str(tmp_path / "c")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    with LmdbLog(tmp_path / "bus") as log, LmdbLog(tmp_path / "c") as store:
        assert store.load_position(position_key(Materializer(), log)) != b""
        stats = run_consumer(Materializer(), log, store, until_idle=True, poll_s=0.2)
    assert stats.events == 0  # everything was already consumed and committed
