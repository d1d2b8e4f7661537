"""Kafka in operation: same episode on both backends, foreign records, a lost broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
import pytest
from kafka import KafkaProducer

from automem.consumers.materializer import Materializer
from automem.consumers.runtime import run_consumer
from automem.engine.log import LmdbLog, open_log
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.events import DeadLettered, EpisodeStarted

from ..support.broker import Broker, free_port


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from automem.engine.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_same_episode_same_events_on_lmdb_and_kafka(broker: Broker, tmp_path: Path) -> None:
    buses = [f"lmdb://{tmp_path / 'lmdb'}", f"kafka://{broker.url}/e{uuid.uuid4().hex[:8]}"]
    streams = []
    for bus in buses:
        [summary] = run(RunRequest(env="nethack", task=None, episodes=1, max_steps=25, seed=4, policy="random",
                                   bus=bus, data=str(tmp_path / "d")))
        with open_log(bus) as log:
            events = [r.event for r in log.read_stream(f"ep/{summary.id}")]
        streams.append([msgspec.structs.replace(e, episode="-") if isinstance(e, EpisodeStarted) else e for e in events])
    assert len(streams[0]) > 25 and streams[0] == streams[1]


def test_a_foreign_record_becomes_a_dead_letter_and_the_consumer_goes_on(broker: Broker, tmp_path: Path) -> None:
    bus = f"kafka://{broker.url}/f{uuid.uuid4().hex[:8]}"
    [first] = run(RunRequest(env="minihack", task=None, episodes=1, max_steps=5, seed=0, policy="random", bus=bus))
    producer = KafkaProducer(bootstrap_servers=broker.url)
    producer.send(bus.rsplit("/", 1)[1] + ".ep", key=b"ep/alien", value=b"\x00 not msgpack").get(10)
    producer.close()
    [second] = run(RunRequest(env="minihack", task=None, episodes=1, max_steps=5, seed=1, policy="random", bus=bus))
    with open_log(bus) as log, LmdbLog(tmp_path / "store") as store:
        stats = run_consumer(Materializer(every=1), log, store, until_idle=True, poll_s=0.5)
        assert stats.dead_letters == 1
        [letter] = [r.event for r in log.read_stream("deadletter/materializer")]
        assert isinstance(letter, DeadLettered) and letter.source.endswith(".ep") and ":" in letter.position
        assert letter.raw == b"\x00 not msgpack"
        for summary in (first, second):  # both episodes, before and after the bad record, materialised
            assert Materializer().cursor(store, summary.id).seq == log.head(f"ep/{summary.id}") - 1


@pytest.mark.slow
def test_unreachable_broker_exits_2_with_one_line(tmp_path: Path) -> None:
    for args in (["episodes"], ["run", "--policy", "random", "--max-steps", "2"], ["consume", "materializer"]):
        proc = cli(*args, "--bus", f"kafka://127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot reach the Kafka broker" in lines[0]


@pytest.mark.slow
def test_broker_lost_mid_run_fails_clearly_and_keeps_local_state(tmp_path: Path) -> None:
    """Guarantee: an append returns only once the broker acknowledged it (acks=all); when the
    broker goes away the run stops within the client timeout with exit status 2 and one line,
    never reporting an unacknowledged batch as written, and the local store is untouched.
    (Tansu keeps memory only, so its restart is a fresh, empty broker.)"""
    broker = Broker().start()
    bus = f"kafka://{broker.url}/b{uuid.uuid4().hex[:8]}"
    try:
        with LmdbLog(tmp_path / "local") as local:
            local.save_position("consumer/materializer", b"kept")
        proc = subprocess.Popen([sys.executable, "-c", "from automem.engine.cli import main; main()", "run",
                                 "--env", "crafter", "--policy", "random", "--max-steps", "100000", "--episodes", "500", "--bus", bus,
                                 "--data", str(tmp_path / "local")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ})
        deadline = time.monotonic() + 60
        with open_log(bus) as log:
            while time.monotonic() < deadline and not any(log.head(s) > 20 for s in log.streams("ep")):
                time.sleep(0.5)
        broker.stop()
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("automem: error:") and "Kafka broker" in last and "Traceback" not in stderr
        with LmdbLog(tmp_path / "local") as local:
            assert local.load_position("consumer/materializer") == b"kept"
        broker = Broker(broker.port).start()  # a fresh broker on the same port: work goes on
        [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=3, seed=0, policy="random", bus=bus))
        assert summary.steps == 3
    finally:
        broker.stop()
