"""Agent-loop overhead: bare env steps vs the full agent loop with every event logged.

The agent runs with the seeded `random` policy (LOG and PLAN phases, memory ops, one
batch append per step); the bare loop then replays exactly the actions the agent took
on a fresh env with the same seed, in the same process. The agent loop is measured twice:
one LMDB commit per step (`ratio`), and under GroupCommit with its defaults (`group_ratio`:
random-policy steps are fast, so up to 32 steps share a commit); same seeds, same actions.
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
from automem.engine.envs import make_env
from automem.engine.log.group import DEFAULT_MAX_BATCHES, DEFAULT_WINDOW_S, GroupCommit
from automem.engine.log.lmdb.log import LmdbLog
from automem.schemas.streams import episode_stream


def run(env: str = "crafter", steps: int = 2000, fsync: bool = False, repeat: int = 3) -> dict:
    """Best of `repeat` measurements of each loop, so a busy neighbour does not set the ratio."""
    runs = [_measure(env, steps, fsync) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["agent_s"])
    bare_s = min(r["bare_s"] for r in runs)
    agent_s, n = best["agent_s"], best["steps"]
    out = {"name": "overhead", "env": env, "steps": n, "episodes": best["episodes"], "events": best["events"],
           "fsync": fsync, "repeat": repeat, "bare_steps_per_s": round(n / bare_s, 1),
           "agent_steps_per_s": round(n / agent_s, 1), "ratio": round(bare_s / agent_s, 3)}
    group = min(runs, key=lambda r: r["group_s"])
    out["group"] = {"window_s": DEFAULT_WINDOW_S, "max_batches": DEFAULT_MAX_BATCHES, "commits": group["commits"],
                    "agent_steps_per_s": round(n / group["group_s"], 1)}
    out["group_ratio"] = round(bare_s / group["group_s"], 3)
    if env == "crafter":  # the game as upstream ships it renders a frame per step: the loop users know
        upstream_s = min(_upstream_crafter(best["actions"]) for _ in range(repeat))
        out["upstream_bare_steps_per_s"] = round(n / upstream_s, 1)
        out["ratio_vs_upstream_bare"] = round(upstream_s / agent_s, 3)
    return out


def _measure(env: str, steps: int, fsync: bool) -> dict:
    """Episodes with seeds 0, 1, ... until `steps` agent steps, per-step commits then group
    commit (fresh stores, same env object); then the same actions bare."""
    roots = [tempfile.mkdtemp(prefix="automem-bench-") for _ in range(2)]
    try:
        game = ResetTimed(make_env(env))
        log = LmdbLog(roots[0], fsync=fsync)
        agent_s, lengths = record_episodes(log, game, env, steps)
        episodes = recorded_actions(log, len(lengths))
        events = sum(log.head(episode_stream(f"bench-{seed}")) for seed in range(len(lengths)))
        log.close()
        with GroupCommit(LmdbLog(roots[1], fsync=fsync)) as group:
            group_s, group_lengths = record_episodes(group, game, env, steps)
            commits = group.commits
            if recorded_actions(group, len(group_lengths)) != episodes:
                raise RuntimeError("the group-commit episodes took other actions than the per-step ones")
        bare_s = bare_seconds(game, episodes)
        game.close()
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    return {"steps": sum(map(len, episodes)), "episodes": len(episodes), "events": events,
            "agent_s": agent_s, "group_s": group_s, "commits": commits, "bare_s": bare_s, "actions": episodes}


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
