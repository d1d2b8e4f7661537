"""Helpers shared by the benchmarks: timing, realistic synthetic events, recorded agent episodes."""

from __future__ import annotations

import random
import time
from typing import Callable

from automem.engine.agent.episode import Episode, EpisodeSpec
from automem.engine.envs import StepResult, TextEnv
from automem.engine.log.port import EventLog
from automem.engine.policy.random_policy import RandomPolicy
from automem.engine.structure.registry import register_structure
from automem.engine.structure.seeds import v0
from automem.schemas.events import (
    EnvFacts,
    LLMCalled,
    MemoryOp,
    MemoryOpApplied,
    StepTaken,
)
from automem.schemas.streams import episode_stream
from automem.schemas.version import ENGINE_VERSION

WORDS = "tree stone water grass table wood iron coal sapling zombie skeleton cow north south east west near far".split()


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of `repeat` runs: the least noisy estimate on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def step_events(rng: random.Random, step: int) -> list:
    """One agent step as the runtime logs it: model calls, memory ops, the step itself."""
    events: list = []
    for turn in range(4):
        events.append(LLMCalled(step=step, phase="log" if turn < 2 else "plan", turn=turn, role="agent",
                                model="smollm2-135m-instruct", prompt_digest=f"{rng.getrandbits(128):032x}",
                                response=text(rng, 140), prompt_tokens=900, completion_tokens=60, latency_ms=850.0))
    for turn in range(3):
        # whole-file writes keep files at a realistic size (the default structure caps them at 16 KB)
        name = ("map_notes.txt", "strategy.txt", "actions_log.txt")[turn]
        events.append(MemoryOpApplied(step=step, phase="log", turn=turn, op=MemoryOp("write", name, (text(rng, 120),)),
                                      ok=True, result_digest=f"{rng.getrandbits(64):016x}",
                                      read_versions={"map_notes.txt": f"{rng.getrandbits(64):016x}"},
                                      written_versions={"map_notes.txt": f"{rng.getrandbits(64):016x}"},
                                      memory_digest=f"{rng.getrandbits(128):032x}"))
    events.append(StepTaken(step=step, raw_action="Move West", action="Move West", valid=True, reward=0.0, done=False,
                            observation=text(rng, 150), observation_digest=f"{rng.getrandbits(128):032x}",
                            memory_digest=f"{rng.getrandbits(128):032x}",
                            facts=EnvFacts(position=(rng.randrange(64), rng.randrange(64)), health=9.0,
                                           inventory={"wood": 2, "sapling": 1}, achievements=("collect_wood",))))
    return events


class ResetTimed:
    """Env wrapper that keeps reset time out of the figures (Crafter's world generation takes ~1 s)."""

    def __init__(self, env: TextEnv) -> None:
        self.env, self.reset_s = env, 0.0
        self.name, self.task, self.fallback_action = env.name, env.task, env.fallback_action

    def reset(self, seed: int) -> tuple[str, EnvFacts]:
        t = time.perf_counter()
        out = self.env.reset(seed)
        self.reset_s += time.perf_counter() - t
        return out

    def step(self, action: str) -> StepResult:
        return self.env.step(action)

    def valid_actions(self) -> list[str]:
        return self.env.valid_actions()

    def contexts(self) -> tuple[str, str]:
        return self.env.contexts()

    def progression(self) -> float:
        return self.env.progression()

    def close(self) -> None:
        self.env.close()


def record_episodes(log: EventLog, game: TextEnv, env: str, steps: int, prefix: str = "bench",
                    max_steps: int | None = None) -> tuple[float, list[int]]:
    """Agent episodes `{prefix}-0`, `-1`, ... (seeded random policy, seed = episode number)
    until `steps` steps in all; returns the agent loop's seconds without resets, and the lengths.
    The log is flushed after each episode, inside the timing (a no-op unless it groups commits)."""
    structure = v0(env)
    version = register_structure(log, structure)
    lengths: list[int] = []
    start_reset = getattr(game, "reset_s", 0.0)
    t = time.perf_counter()
    while sum(lengths) < steps:
        seed = len(lengths)
        budget = steps - sum(lengths) if max_steps is None else min(max_steps, steps - sum(lengths))
        spec = EpisodeSpec(f"{prefix}-{seed}", game, seed, budget, structure, version)
        lengths.append(Episode(log, spec, RandomPolicy(seed), None, ENGINE_VERSION).run().length)
        log.flush()  # group commit: an episode is durable when it ends, as the runner does it
    return time.perf_counter() - t - (getattr(game, "reset_s", 0.0) - start_reset), lengths


def recorded_actions(log: EventLog, episodes: int, prefix: str = "bench") -> list[list[str]]:
    """The actions the env executed in each recorded episode, in order."""
    return [[r.event.action for r in log.read_stream(episode_stream(f"{prefix}-{seed}"))
             if isinstance(r.event, StepTaken)]
            for seed in range(episodes)]


def bare_seconds(game: ResetTimed, episodes: list[list[str]]) -> float:
    """Seconds for the bare env to take the same actions (seed = episode number), resets excluded."""
    total = 0.0
    for seed, actions in enumerate(episodes):
        game.reset(seed)
        t = time.perf_counter()
        for action in actions:
            game.step(action)
        total += time.perf_counter() - t
    return total
