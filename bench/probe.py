"""Memory probes: their speed, what rebuilding memory costs beside the reader, and whether
the embedded model answers better with its memory than without.

(a) Speed: the `random` reader and the embedded model (greedy) probe the same recorded
episodes; probes per second each, and the share of a probe's time spent rebuilding memory at
its step (the fold of the episode's write-ops, `memory_after`) against the reader's time.
(b) Accuracy: the fixed set is `EPISODES` Crafter episodes (seeds 0..) of `STEPS` steps played
by the seeded `random` policy with the v0 structure (the embedded model, greedy, stands
still and unlocks nothing, so its own episodes leave nothing to ask), probed every `EVERY`
steps by the embedded model with the memory as it was and with none (the control);
accuracy per arm with 95% bootstrap intervals, and the paired gap.
"""

from __future__ import annotations

import shutil
import tempfile
import time

from automem.engine.episodes.read import read_episode
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.policy.base import Policy
from automem.engine.policy.random_policy import RandomPolicy
from automem.engine.probes import ProbeRun, probe_episode
from automem.engine.probes.run import check_steps, memory_after
from automem.engine.probes.stats import accuracy
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run as play

EPISODES, STEPS, EVERY = 3, 100, 20


def run(episodes: int = EPISODES, steps: int = STEPS, every: int = EVERY) -> dict:
    from automem.engine.policy.local import default_local_policy

    root = tempfile.mkdtemp(prefix="automem-bench-")
    try:
        rows = play(RunRequest(env="crafter", task=None, episodes=episodes, max_steps=steps, seed=0, policy="random",
                               structure="v0", data=root))
        ids = [r.id for r in rows]
        local = default_local_policy()
        with LmdbLog(root, fsync=False) as log:
            rebuild_s = _rebuild_seconds(log, ids, every)
            random_s, random_runs = _timed(log, ids, RandomPolicy(), every)
            local_s, local_runs = _timed(log, ids, local, every)
        answers = [p for r in local_runs for p in r.probes]
        n_random, n_local = sum(len(r.probes) for r in random_runs), len(answers)
        return {
            "name": "probe", "env": "crafter", "episodes": ids, "steps": steps, "every": every,
            "played_by": "random (seeded), structure v0", "reader": "local (embedded SmolLM2-135M, greedy)",
            "random_probes_per_s": round(n_random / random_s, 2), "local_probes_per_s": round(n_local / local_s, 3),
            "rebuild_s": round(rebuild_s, 4),
            "rebuild_share_of_local": round(rebuild_s / local_s, 5), "ratio": round(random_s / local_s, 5),
            "accuracy": {arm: _accuracy([float(p.correct) for p in answers if p.arm == arm and not p.error], f"bench/{arm}")
                         for arm in ("memory", "control")},
            "per_kind": {kind: {arm: _accuracy([float(p.correct) for p in answers
                                                 if p.kind == kind and p.arm == arm and not p.error], f"bench/{kind}/{arm}")
                                for arm in ("memory", "control")}
                         for kind in sorted({p.kind for p in answers})},
            "gap": _accuracy(_paired(local_runs), "bench/gap"),
            "failed": sum(r.failed for r in local_runs),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _rebuild_seconds(log: LmdbLog, episodes: list[str], every: int) -> float:
    t = time.perf_counter()
    for episode in episodes:
        record = read_episode(log, episode)
        memory_after(episode, record.events, set(check_steps(len(record.steps), None, every)))
    return time.perf_counter() - t


def _timed(log: LmdbLog, episodes: list[str], reader: Policy, every: int) -> tuple[float, list[ProbeRun]]:
    t = time.perf_counter()
    runs = [probe_episode(log, episode, reader, every=every) for episode in episodes]
    return time.perf_counter() - t, runs


def _accuracy(values: list[float], label: str) -> dict:
    a = accuracy(values, label)
    return {"n": a.n, "mean": a.accuracy, "interval": [a.low, a.high]}


def _paired(runs: list[ProbeRun]) -> list[float]:
    out = []
    for r in runs:
        by = {(p.index, p.arm): float(p.correct) for p in r.probes if not p.error}
        out += [by[(i, "memory")] - by[(i, "control")] for i, arm in by if arm == "memory" and (i, "control") in by]
    return out
