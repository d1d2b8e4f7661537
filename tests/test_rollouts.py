"""Rollouts on Kafka: two workers, ten requests, one worker killed mid-episode, ten episodes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

from automem.consumers.rollouts import status, submit
from automem.engine.log import open_log
from automem.schemas.events import EpisodeAbandoned, EpisodeEnded, RolloutAttempted

from .broker import Broker


def start_worker(bus: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from automem.engine.cli import main; main()", "worker",
                             "--bus", bus, "--policy", "random"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def last_event(log, episode: str):
    head = log.head(f"ep/{episode}")
    return next(iter(log.read_stream(f"ep/{episode}", head - 1))).event if head else None


def test_every_request_gives_exactly_one_completed_episode(broker: Broker) -> None:
    bus = f"kafka://{broker.url}/r{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AUTOMEM_KAFKA_MAX_POLL_MS": "6000"}
    with open_log(bus) as log:
        ids = submit(log, "crafter", None, 10, 0, 300, "random")
    victim, survivor = start_worker(bus, env), start_worker(bus, env)
    victim_id = f"{socket.gethostname()}-{victim.pid}"
    deadline = time.monotonic() + 120
    killed = None
    try:
        while killed is None and time.monotonic() < deadline:  # wait until the victim is mid-episode
            with open_log(bus) as log:
                for request in ids:
                    for rec in log.read_stream(f"rollout/{request}"):
                        e = rec.event
                        if isinstance(e, RolloutAttempted) and e.worker == victim_id and log.head(f"ep/{e.episode}") > 1 \
                                and not isinstance(last_event(log, e.episode), EpisodeEnded):
                            os.kill(victim.pid, signal.SIGKILL)
                            killed = e.episode
                            break
                    if killed:
                        break
            time.sleep(0.05)
        assert killed, "the victim worker never started an episode"
        victim.wait()
        while time.monotonic() < deadline:
            with open_log(bus) as log:
                if all(r["episode"] for r in status(log)):
                    break
            time.sleep(0.5)
    finally:
        for proc in (victim, survivor):
            proc.kill()
            proc.wait()
    with open_log(bus) as log:
        rows = {r["request"]: r for r in status(log)}
        assert sorted(rows) == sorted(ids) and all(r["episode"] for r in rows.values())
        for r in rows.values():
            assert isinstance(last_event(log, r["episode"]), EpisodeEnded)
        assert isinstance(last_event(log, killed), EpisodeAbandoned)  # the interrupted attempt, marked
        assert killed not in {r["episode"] for r in rows.values()}
        assert sum(r["attempts"] for r in rows.values()) >= 11
