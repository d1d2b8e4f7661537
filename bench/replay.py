"""Replay speed and memory time travel, on episodes recorded through the real agent loop.

(a) Episodes are recorded with the seeded `random` policy into a fresh store; `replay`
re-runs and verifies each one, and the bare env takes exactly the same actions, in the
same process. Env creation, resets (Crafter's world generation) and closing stay out of both.

(b) One long episode (10,000 steps by default) is recorded the same way and materialised
with snapshots; then the memory after a step near its start, middle and end is read the
way `automem memory EP --at STEP` reads it (nearest snapshot + tail of the log). A random
agent dies within a few hundred steps in Crafter and NetHack, so the long episode plays
MiniHack River, where it survives 10,000 steps (seed 0), whatever `env` is.
"""

from __future__ import annotations

import shutil
import tempfile
import time

from automem.bench.common import (
    ResetTimed,
    bare_seconds,
    record_episodes,
    recorded_actions,
)
from automem.bench.memory import latencies_ms
from automem.engine.envs import TextEnv, make_env
from automem.engine.episodes.replay import replay
from automem.engine.episodes.timetravel import (
    _replay_tail,
    materialize,
    memory_after_step,
)
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.memory.snapshot import DEFAULT_EVERY
from automem.schemas.events import StepTaken
from automem.schemas.streams import episode_stream

LONG_ENV, LONG_TASK = "minihack", "river"


def run(env: str = "crafter", steps: int = 2000, repeat: int = 3, long_steps: int = 10_000,
        every: int = DEFAULT_EVERY) -> dict:
    root = tempfile.mkdtemp(prefix="automem-bench-")
    try:
        with LmdbLog(root, fsync=False) as log:
            out = {"name": "replay", "env": env, **_replay_speed(log, env, steps, repeat),
                   "memory_at_step": _memory_at_step(log, long_steps, every)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _replay_speed(log: LmdbLog, env: str, steps: int, repeat: int) -> dict:
    game = ResetTimed(make_env(env))
    try:
        _, lengths = record_episodes(log, game, env, steps)
        episodes = recorded_actions(log, len(lengths))
        replay_s = min(_replay_seconds(log, len(lengths)) for _ in range(repeat))
        bare_s = min(bare_seconds(game, episodes) for _ in range(repeat))
    finally:
        game.close()
    n = sum(lengths)
    return {"steps": n, "episodes": len(lengths), "repeat": repeat, "bare_steps_per_s": round(n / bare_s, 1),
            "replay_steps_per_s": round(n / replay_s, 1), "ratio": round(bare_s / replay_s, 3)}


class _SetupTimed(ResetTimed):
    """Also times closing: a replay makes and closes an env per episode, the bare loop reuses one."""

    close_s = 0.0

    def close(self) -> None:
        t = time.perf_counter()
        super().close()
        self.close_s += time.perf_counter() - t


def _replay_seconds(log: LmdbLog, episodes: int) -> float:
    """Seconds to replay and verify every episode, less the env's creation, reset and close."""
    made: list[_SetupTimed] = []
    create_s = 0.0

    def timed_env(name: str, task: str, observation: str) -> TextEnv:
        nonlocal create_s
        t = time.perf_counter()
        game = _SetupTimed(make_env(name, task, observation))
        create_s += time.perf_counter() - t
        made.append(game)
        return game

    t = time.perf_counter()
    for seed in range(episodes):
        result = replay(log, f"bench-{seed}", timed_env)
        if result.divergence is not None or not result.ended:
            raise AssertionError(f"bench-{seed} did not replay: {result}")
    return time.perf_counter() - t - create_s - sum(g.reset_s + g.close_s for g in made)


def _memory_at_step(log: LmdbLog, steps: int, every: int) -> dict:
    """Memory after a step at the start, middle and end of one long recorded episode."""
    game = ResetTimed(make_env(LONG_ENV, LONG_TASK))
    try:
        _, lengths = record_episodes(log, game, LONG_ENV, steps, prefix="long", max_steps=steps)
    finally:
        game.close()
    episode, length = "long-0", lengths[0]  # should it die early, later seeds fill the step count: unused
    store = SnapshotStore(log)
    materialize(log, store, episode, every)
    points = {"start": 0, "middle": length // 2, "end": length - 1}
    recorded = {r.event.step: r.event.memory_digest for r in log.read_stream(episode_stream(episode))
                if isinstance(r.event, StepTaken) and r.event.step in points.values()}
    for step in points.values():  # the snapshot path gives the memory the agent had then
        if memory_after_step(log, store, episode, step).digest() != recorded[step]:
            raise AssertionError(f"memory after step {step} of {episode} differs from the recorded digest")
    ms = latencies_ms(points, lambda step: memory_after_step(log, store, episode, step))
    full_end = latencies_ms({"end": points["end"]}, lambda step: _replay_tail(log, episode, None, None, step), 3)
    return {"env": LONG_ENV, "task": LONG_TASK, "steps": length, "events": log.head(episode_stream(episode)),
            "snapshot_every": every, "snapshots": len(store.positions(episode)), "at_step": points,
            "latency_ms": {k: round(v, 3) for k, v in ms.items()},
            "flatness": round(ms["end"] / ms["start"], 2),
            "full_replay_end_ms": round(full_end["end"], 3)}
