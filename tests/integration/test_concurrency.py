"""Many episodes in flight in one process: each episode is event for event what it is alone;
one failing episode ends alone; the local model's batched episodes replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from automem.engine.agent.episode import Call
from automem.engine.episodes.replay import replay
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.policy.base import (
    Completion,
    ModelError,
    PolicyRequest,
    complete_all,
)
from automem.engine.rollout.drive import drive
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.errors import UserError
from automem.schemas.events import EpisodeStarted, LLMCalled
from automem.schemas.streams import episode_stream


def episode_events(data: Path, episode: str) -> list[dict[str, Any]]:
    """An episode's events without what names the run rather than the episode."""
    out = []
    with LmdbLog(data, create=False) as log:
        for rec in log.read_stream(episode_stream(episode)):
            doc = msgspec.to_builtins(rec.event)
            if isinstance(rec.event, EpisodeStarted):
                doc.pop("episode")
            if isinstance(rec.event, LLMCalled):
                doc.pop("latency_ms")
            out.append(doc)
    return out


def by_seed(data: Path, rows: list) -> dict[int, list[dict[str, Any]]]:
    return {r.seed: episode_events(data, r.id) for r in rows}


def run_at(tmp_path: Path, name: str, concurrency: int, **fields: Any) -> tuple[Path, list]:
    data = tmp_path / name
    req = RunRequest(**({"env": "minihack", "task": None, "episodes": 4, "max_steps": 12, "seed": 3,
                         "policy": "random"} | fields), concurrency=concurrency, data=str(data))
    return data, run(req)


@pytest.mark.slow
@pytest.mark.parametrize("env", ["crafter", "minihack", "nethack"])
def test_random_episodes_in_flight_equal_the_same_episodes_alone(tmp_path: Path, env: str) -> None:
    alone_data, alone = run_at(tmp_path, "alone", 1, env=env)
    together_data, together = run_at(tmp_path, "together", 3, env=env)
    assert [r.seed for r in together] == [3, 4, 5, 6]  # results in seed order, whatever finished first
    assert by_seed(together_data, together) == by_seed(alone_data, alone)
    assert all(r.status == "ended" and r.steps > 0 for r in together)


def scripted(path: Path, seeds: range, answers: int, short: int | None = None) -> str:
    """A seed-keyed answer file: the same answer script for every seed (`short` gets 3 lines)."""
    lines = []
    for turn in range(answers):
        for seed in seeds:
            if seed == short and turn >= 3:
                continue
            text = "<|APPEND|>notes.txt|seen %d<|END|><|DONE|>" % turn if turn % 2 else "<|ACTION|>north<|END|>"
            lines.append(json.dumps({"seed": seed, "text": text}))
    path.write_text("\n".join(lines) + "\n")
    return f"file:{path}"


@pytest.mark.slow
@pytest.mark.parametrize("env", ["crafter", "minihack", "nethack"])
def test_file_episodes_in_flight_equal_the_same_episodes_alone_and_one_failure_ends_alone(tmp_path: Path, env: str) -> None:
    policy = scripted(tmp_path / "answers.jsonl", range(3, 7), 40, short=5)
    alone_data, alone = run_at(tmp_path, "alone", 1, env=env, policy=policy, max_steps=8)
    together_data, together = run_at(tmp_path, "together", 4, env=env, policy=policy, max_steps=8)
    assert by_seed(together_data, together) == by_seed(alone_data, alone)
    causes = {r.seed: r.cause for r in together}
    assert causes[5].startswith("model_error: file policy exhausted after 3 responses")
    assert all(causes[s] == "max_steps" for s in (3, 4, 6)), causes
    assert all(r.steps == 8 for r in together if r.seed != 5)


def test_an_unkeyed_file_is_refused_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('{"text": "<|ACTION|>north<|END|>"}\n')
    with pytest.raises(UserError, match='--concurrency 1, or give every line a "seed"'):
        run_at(tmp_path, "d", 2, policy=f"file:{path}")
    assert not (tmp_path / "d").exists()  # refused before the store is made


def test_a_crashing_env_ends_its_episode_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from automem.engine import envs

    real = envs.make_env

    class Crashing:
        """The real game, whose seed-4 episode raises at its third step."""

        def __init__(self, env: Any) -> None:
            self.env, self.steps = env, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.env, name)

        def reset(self, seed: int) -> Any:
            self.seed = seed
            return self.env.reset(seed)

        def step(self, action: str) -> Any:
            self.steps += 1
            if self.seed == 4 and self.steps == 3:
                raise RuntimeError("segfault in the game, simulated")
            return self.env.step(action)

    monkeypatch.setattr(envs, "make_env", lambda name, task=None, observation="automem": Crashing(real(name, task)))
    data, rows = run_at(tmp_path, "d", 3)
    causes = {r.seed: r.cause for r in rows}
    assert causes[4].startswith("env_error: minihack step ") and causes[4].endswith(
        ": RuntimeError: segfault in the game, simulated"), causes
    assert [r.steps for r in rows if r.seed == 4] == [2]
    assert all(r.status == "ended" and r.steps == 12 for r in rows if r.seed != 4)
    with LmdbLog(data, create=False) as log:
        assert all(replay(log, r.id).divergence is None for r in rows)


@pytest.mark.parametrize("concurrency", [0, 1025])
def test_absurd_concurrency_is_refused(tmp_path: Path, concurrency: int) -> None:
    with pytest.raises(UserError, match="--concurrency must be 1 to 1024"):
        run_at(tmp_path, "d", concurrency)


def test_the_driver_closes_every_job_when_one_fails_outright() -> None:
    """A failure that is not an episode's own end (a log that cannot be written) stops the run,
    and every job in flight is closed (its env and lease released)."""
    closed = []

    class Echo:
        name = "echo"

        def for_episode(self, seed: int) -> "Echo":
            return self

        def complete(self, request: PolicyRequest) -> Completion:
            return Completion(text="x", model="echo")

    def job(i: int):
        try:
            for turn in range(3):
                yield Call(Echo(), PolicyRequest(messages=({"role": "user", "content": str(i)},)))
                if i == 1 and turn == 1:
                    raise OSError("disk full")
            return i
        finally:
            closed.append(i)

    with pytest.raises(OSError, match="disk full"):
        drive((job(i) for i in range(5)), 3)
    assert sorted(closed) == [0, 1, 2]  # jobs 3 and 4 were never started
    assert drive((job(i) for i in (0, 2, 3)), 2) == [0, 2, 3]


def test_complete_all_batches_by_key_and_keeps_failures_apart() -> None:
    seen = []

    class Batched:
        batch_key = "one model"

        def __init__(self, name: str) -> None:
            self.name = name

        def complete_batch(self, calls):
            seen.append([p.name for p, _ in calls])
            return [ModelError("too long") if p.name == "b" else Completion(text=p.name, model=p.name) for p, _ in calls]

    class Alone:
        name = "alone"

        def complete(self, request: PolicyRequest) -> Completion:
            raise ModelError("down")

    request = PolicyRequest(messages=({"role": "user", "content": "hi"},))
    answers = complete_all([(Batched("a"), request), (Alone(), request), (Batched("b"), request), (Batched("c"), request)])
    assert seen == [["a", "b", "c"]]
    assert [a.text if isinstance(a, Completion) else str(a) for a in answers] == ["a", "down", "too long", "c"]


@pytest.mark.slow
def test_local_episodes_in_flight_replay(tmp_path: Path, converted_model: Path) -> None:
    """The embedded model decodes the pending calls of several episodes as one batch; every
    episode replays (replay needs no model, so this holds whatever batching does to floats)."""
    data, rows = run_at(tmp_path, "d", 3, policy=f"local:{converted_model}", episodes=3, max_steps=2)
    assert all(r.steps == 2 and r.status == "ended" for r in rows), rows
    with LmdbLog(data, create=False) as log:
        results = [replay(log, r.id) for r in rows]
    assert all(r.divergence is None and r.verified == 2 for r in results), results


@pytest.mark.slow
def test_workers_and_concurrency_compose(tmp_path: Path) -> None:
    alone_data, alone = run_at(tmp_path, "alone", 1, episodes=5)
    data = tmp_path / "together"
    together = run(RunRequest(env="minihack", task=None, episodes=5, max_steps=12, seed=3, policy="random",
                              workers=2, concurrency=2, data=str(data)))
    assert by_seed(data, together) == by_seed(alone_data, alone)


def test_a_concurrent_worker_completes_every_request_once(tmp_path: Path) -> None:
    import threading

    from automem.engine.rollout.bus import Worker, status, submit
    from automem.schemas.events import RolloutCompleted

    with LmdbLog(tmp_path / "d") as log:
        ids = submit(log, RunRequest(env="minihack", task=None, episodes=5, max_steps=6, seed=0, policy="random"))
        assert Worker(log, None, "w", concurrency=3).run(threading.Event(), until_idle=True) == 5
        rows = {r["request"]: r for r in status(log)}
        assert sorted(rows) == sorted(ids) and all(r["episode"] and r["attempts"] == 1 for r in rows.values())
        for request in ids:
            done = [x for x in log.read_stream(f"rollout/{request}") if isinstance(x.event, RolloutCompleted)]
            assert len(done) == 1
            assert replay(log, done[0].event.episode).divergence is None
