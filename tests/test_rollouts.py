"""Rollouts on Kafka: two workers with three episodes in flight each, ten requests, one
worker killed mid-episode, ten episodes, each request completed exactly once."""

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
from automem.engine.runner import RunRequest
from automem.schemas.events import EpisodeAbandoned, EpisodeEnded, RolloutAttempted, RolloutCompleted

from .broker import Broker


def start_worker(bus: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from automem.engine.cli import main; main()", "worker",
                             "--bus", bus, "--policy", "random", "--concurrency", "3"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def last_event(log, episode: str):
    head = log.head(f"ep/{episode}")
    return next(iter(log.read_stream(f"ep/{episode}", head - 1))).event if head else None


def test_every_request_gives_exactly_one_completed_episode(broker: Broker) -> None:
    bus = f"kafka://{broker.url}/r{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AUTOMEM_KAFKA_MAX_POLL_MS": "6000"}
    with open_log(bus) as log:
        ids = submit(log, RunRequest(env="crafter", task=None, episodes=10, seed=0, max_steps=300, policy="random"))
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
            completions = [x for x in log.read_stream(f"rollout/{r['request']}") if isinstance(x.event, RolloutCompleted)]
            assert len(completions) == 1, r
        # the kill may land just after the victim's last step: then its episode ended but was
        # never completed for the request; otherwise it was marked abandoned and redone
        if isinstance(last_event(log, killed), EpisodeAbandoned):
            assert killed not in {r["episode"] for r in rows.values()}
        assert sum(r["attempts"] for r in rows.values()) >= 10


def test_an_interrupted_attempt_is_abandoned_and_redone(tmp_path) -> None:
    """Deterministic: the log as a worker killed mid-episode leaves it, then another worker."""
    from automem.consumers.rollouts import Worker
    from automem.schemas.events import EpisodeStarted, RolloutRequested

    with open_log(f"lmdb://{tmp_path / 'bus'}") as log:
        [request] = submit(log, RunRequest(env="minihack", task=None, episodes=1, seed=3, max_steps=5, policy="random"))
        log.append(f"rollout/{request}", 1, [RolloutAttempted(request_id=request, episode=f"{request}-a0", worker="dead")])
        log.append(f"ep/{request}-a0", 0, [EpisodeStarted(episode=f"{request}-a0", env="minihack", task="corridor-r3",
                                                          seed=3, max_steps=5, structure="x", models={}, engine_version="t")])
        req = next(r.event for r in log.read_stream(f"rollout/{request}") if isinstance(r.event, RolloutRequested))
        done = Worker(log, "random", "w2").handle(req)
        assert done == f"{request}-a1" and isinstance(last_event(log, done), EpisodeEnded)
        assert isinstance(last_event(log, f"{request}-a0"), EpisodeAbandoned)
        assert Worker(log, "random", "w3").handle(req) == done  # a redelivery changes nothing
        assert [r["attempts"] for r in status(log)] == [2]


def test_a_request_carries_the_memory_policy_and_sampling(tmp_path) -> None:
    """Two-model rollouts at scale: the worker runs the request's memory model next to its agent."""
    from automem.consumers.rollouts import Worker
    from automem.engine.policy.sampling import Sampling
    from automem.engine.replay import replay
    from automem.schemas.events import EpisodeStarted, LLMCalled, RolloutRequested

    with open_log(f"lmdb://{tmp_path / 'bus'}") as log:
        [request] = submit(log, RunRequest(env="crafter", task=None, episodes=1, seed=4, max_steps=6, policy="random",
                                           memory_policy="random", sampling=Sampling(0.8, 0.95)))
        req = next(r.event for r in log.read_stream(f"rollout/{request}") if isinstance(r.event, RolloutRequested))
        assert (req.memory_policy, req.temperature, req.top_p) == ("random", 0.8, 0.95)
        done = Worker(log, None, "w").handle(req)
        events = [r.event for r in log.read_stream(f"ep/{done}")]
        start = events[0]
        assert isinstance(start, EpisodeStarted) and set(start.models) == {"agent", "memory"}
        assert (start.temperature, start.top_p) == (0.8, 0.95)
        assert {e.role for e in events if isinstance(e, LLMCalled)} == {"agent", "memory"}
        assert replay(log, done).divergence is None
