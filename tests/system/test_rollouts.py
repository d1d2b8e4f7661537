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

import pytest

from automem.engine.log import open_log
from automem.engine.rollout.bus import status, submit
from automem.engine.rollout.request import RunRequest
from automem.schemas.events import (
    EpisodeAbandoned,
    EpisodeEnded,
    RolloutAttempted,
    RolloutCompleted,
)

from ..support.broker import Broker


def start_worker(bus: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from automem.engine.cli import main; main()", "worker",
                             "--bus", bus, "--policy", "random", "--concurrency", "3"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def last_event(log, episode: str):
    head = log.head(f"ep/{episode}")
    return next(iter(log.read_stream(f"ep/{episode}", head - 1))).event if head else None


@pytest.mark.slow
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
    from automem.engine.rollout.bus import Worker
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


@pytest.mark.slow
def test_a_request_carries_the_memory_policy_and_sampling(tmp_path) -> None:
    """Two-model rollouts at scale: the worker runs the request's memory model next to its agent."""
    from automem.engine.episodes.replay import replay
    from automem.engine.policy.sampling import Sampling
    from automem.engine.rollout.bus import Worker
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


@pytest.mark.slow
def test_remote_asks_workers_passes_over_failures_and_finds_its_requests_again(tmp_path, monkeypatch) -> None:
    """The loop's driver on a bus: requests with derived ids; a worker's RolloutFailed ends the
    wait at once with its reason; the next start asks again under the next attempt and finds
    what was completed; a third start asks for nothing. The worker plays between two looks
    (the wait's sleep), so the story is exact."""
    import pytest

    from automem.engine.rollout.bus import Worker
    from automem.engine.rollout.players import Remote, served_memory
    from automem.schemas.errors import UserError
    from automem.schemas.events import RolloutFailed, RolloutRequested

    with open_log(f"lmdb://{tmp_path / 'bus'}") as log:
        req = RunRequest(env="crafter", task=None, episodes=1, seed=0, max_steps=3, policy="random")
        remote = Remote(wait_s=60, poll_s=0)

        def requested(attempt: str) -> dict[int, RolloutRequested]:
            found = [r.event for s in log.streams("rollout") for r in log.read_stream(s)
                     if isinstance(r.event, RolloutRequested) and r.event.request_id.endswith(attempt)]
            return {e.seed: e for e in found}

        def worker_round(fail: set[int], attempt: str) -> None:
            for seed, event in requested(attempt).items():
                if seed in fail:
                    stream = f"rollout/{event.request_id}"
                    log.append(stream, log.head(stream), [RolloutFailed(request_id=event.request_id,
                                                                        reason="cannot load mem-x", worker="w")])
                else:
                    Worker(log, None, "w").handle(event)

        monkeypatch.setattr("automem.engine.log.wait.time.sleep", lambda _s: worker_round({5}, "-r0"))
        with pytest.raises(UserError, match="could not play .*-r0: cannot load mem-x"):
            remote.episodes(log, tmp_path, req, [5, 6])
        monkeypatch.setattr("automem.engine.log.wait.time.sleep", lambda _s: worker_round(set(), "-r1"))
        episodes, reused = remote.episodes(log, tmp_path, req, [5, 6])
        assert episodes[0].endswith("-r1-a0") and episodes[1].endswith("-r0-a0") and reused == 1
        before = sorted(log.streams("rollout"))
        monkeypatch.setattr("automem.engine.log.wait.time.sleep", lambda _s: pytest.fail("waited for nothing"))
        assert remote.episodes(log, tmp_path, req, [5, 6]) == (episodes, 2)
        assert sorted(log.streams("rollout")) == before and len(before) == 3
        # a worker that cannot play a request says so on its stream (the driver's wait ends on it)
        from automem.engine.rollout.drive import drive

        bad = RolloutRequested(request_id="bad", env="crafter", task="default", seed=1, max_steps=3, policy="random",
                               structure="no-such-version")
        log.append("rollout/bad", 0, [bad])
        assert drive([Worker(log, None, "w")._reported(bad)], 1) == [None]
        [failed] = [r.event for r in log.read_stream("rollout/bad") if isinstance(r.event, RolloutFailed)]
        assert "no-such-version" in failed.reason and failed.worker == "w"
    assert served_memory("openai:Qwen@http://vllm:8000/v1", "model:mem-1") == "openai:mem-1@http://vllm:8000/v1"
    assert served_memory("random", "model:mem-1") == "model:mem-1"
    assert served_memory("openai:Qwen@http://vllm:8000/v1", None) is None


@pytest.mark.slow
def test_baseline_agents_are_played_by_workers_on_kafka(broker: Broker, tmp_path) -> None:
    """`automem balrog --remote`: a worker on the broker plays the history agent's episodes, which
    record it and replay; a second start finds them and asks for nothing."""
    from automem.engine.episodes.replay import replay
    from automem.engine.protocol import balrog
    from automem.engine.rollout.players import Remote
    from automem.schemas.agent import agent_spec

    bus = f"kafka://{broker.url}/b{uuid.uuid4().hex[:8]}"
    worker = start_worker(bus, dict(os.environ))
    agent = agent_spec("history", 2)
    try:
        with open_log(bus) as log:
            small = balrog.plan(["crafter"], {"crafter": 2}, {"crafter": 4})
            result = balrog.run(log, tmp_path, Remote(wait_s=120, poll_s=0.2), "random", agent, small)
            [task] = result.envs[0].tasks
            assert task.reused == 0 and len(task.episodes) == 2 and result.agent == "history-2"
            for episode in task.episodes:
                assert next(iter(log.read_stream(f"ep/{episode}"))).event.agent == agent
                assert replay(log, episode).divergence is None
            again = balrog.run(log, tmp_path, Remote(wait_s=5, poll_s=0.2), "random", agent, small)
            assert again.envs[0].tasks[0].reused == 2
    finally:
        worker.kill()
        worker.wait()
