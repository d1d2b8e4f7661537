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
from automem.engine.envs import make_env
from automem.engine.log.lmdb_log import LmdbLog
from automem.engine.policy.random_policy import RandomPolicy
from automem.engine.runner import ENGINE_VERSION, register_structure
from automem.engine.structures import v0
from automem.schemas.events import StepTaken


def run(env: str = "crafter", steps: int = 2000, seed: int = 0, fsync: bool = False) -> dict:
    root = tempfile.mkdtemp(prefix="automem-bench-")
    try:
        log = LmdbLog(root, fsync=fsync)
        structure = v0(env)
        version = register_structure(log, structure)
        game = make_env(env)
        t = time.perf_counter()
        Episode(log, EpisodeSpec("bench", game, seed, steps, structure, version), RandomPolicy(seed), None,
                ENGINE_VERSION).run()
        agent_s = time.perf_counter() - t
        game.close()
        actions = [r.event.action for r in log.read_stream("ep/bench") if isinstance(r.event, StepTaken)]
        events = log.head("ep/bench")
        log.close()
        bare = make_env(env)
        bare.reset(seed)
        t = time.perf_counter()
        for action in actions:
            if bare.step(action).done:
                break
        bare_s = time.perf_counter() - t
        bare.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = len(actions)
    return {"name": "overhead", "env": env, "steps": n, "events": events, "fsync": fsync,
            "bare_steps_per_s": round(n / bare_s, 1), "agent_steps_per_s": round(n / agent_s, 1),
            "ratio": round(bare_s / agent_s, 3)}
