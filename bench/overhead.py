"""Agent-loop overhead: bare env steps vs the full agent loop with every event logged.

The agent runs with the seeded `random` policy (LOG and PLAN phases, memory ops, one
batch append per step); the bare loop then replays exactly the actions the agent took
on a fresh env with the same seed, in the same process.
"""

from __future__ import annotations

import shutil
import tempfile
import time

from automem.engine.agent import Episode, EpisodeSpec
from automem.engine.envs import StepResult, TextEnv, make_env
from automem.engine.log.lmdb_log import LmdbLog
from automem.engine.policy.random_policy import RandomPolicy
from automem.engine.runner import ENGINE_VERSION, register_structure
from automem.engine.structures import v0
from automem.schemas.events import EnvFacts, StepTaken


class _ResetTimed:
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

    def progression(self) -> float:
        return self.env.progression()

    def close(self) -> None:
        self.env.close()


def run(env: str = "crafter", steps: int = 2000, fsync: bool = False, repeat: int = 3) -> dict:
    """Best of `repeat` measurements of each loop, so a busy neighbour does not set the ratio."""
    runs = [_measure(env, steps, fsync) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["agent_s"])
    bare_s = min(r["bare_s"] for r in runs)
    agent_s, n = best["agent_s"], best["steps"]
    out = {"name": "overhead", "env": env, "steps": n, "episodes": best["episodes"], "events": best["events"],
           "fsync": fsync, "repeat": repeat, "bare_steps_per_s": round(n / bare_s, 1),
           "agent_steps_per_s": round(n / agent_s, 1), "ratio": round(bare_s / agent_s, 3)}
    if env == "crafter":  # the game as upstream ships it renders a frame per step: the loop users know
        upstream_s = min(_upstream_crafter(best["actions"]) for _ in range(repeat))
        out["upstream_bare_steps_per_s"] = round(n / upstream_s, 1)
        out["ratio_vs_upstream_bare"] = round(upstream_s / agent_s, 3)
    return out


def _measure(env: str, steps: int, fsync: bool) -> dict:
    """Episodes with seeds 0, 1, ... until `steps` agent steps; then the same actions bare."""
    root = tempfile.mkdtemp(prefix="automem-bench-")
    try:
        log = LmdbLog(root, fsync=fsync)
        structure = v0(env)
        version = register_structure(log, structure)
        game = _ResetTimed(make_env(env))
        episodes: list[list[str]] = []
        t = time.perf_counter()
        while sum(map(len, episodes)) < steps:
            seed = len(episodes)
            spec = EpisodeSpec(f"bench-{seed}", game, seed, steps - sum(map(len, episodes)), structure, version)
            ended = Episode(log, spec, RandomPolicy(seed), None, ENGINE_VERSION).run()
            episodes.append([""] * ended.length)
        agent_s = time.perf_counter() - t - game.reset_s
        for seed in range(len(episodes)):
            episodes[seed] = [r.event.action for r in log.read_stream(f"ep/bench-{seed}") if isinstance(r.event, StepTaken)]
        events = sum(log.head(f"ep/bench-{seed}") for seed in range(len(episodes)))
        log.close()
        bare_s = 0.0
        for seed, actions in enumerate(episodes):
            game.reset(seed)
            t = time.perf_counter()
            for action in actions:
                game.step(action)
            bare_s += time.perf_counter() - t
        game.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"steps": sum(map(len, episodes)), "episodes": len(episodes), "events": events,
            "agent_s": agent_s, "bare_s": bare_s, "actions": episodes}


def _upstream_crafter(episodes: list[list[str]]) -> float:
    """Seconds for upstream crafter.Env (image rendered every step) to take the same actions."""
    import crafter

    from automem.engine.envs.crafter_env import ACTIONS

    index = {name: i for i, name in enumerate(ACTIONS)}
    total = 0.0
    for seed, actions in enumerate(episodes):
        game = crafter.Env(seed=seed)
        game.reset()
        t = time.perf_counter()
        for action in actions:
            game.step(index[action])
        total += time.perf_counter() - t
    return total
