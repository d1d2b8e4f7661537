"""Scoring speed over a long stored log, batch and consumer, against the audit's provenance
build in the same run (the graph every score is computed on).

One MiniHack River episode (a random agent survives there; seed 0) is recorded through the
real agent loop with the `random` policy, which reads and writes memory every step. Then
(a) `provenance.build` alone, the baseline; (b) the batch scorer (`score`, graph included);
(c) `automem consume scorer` over the same log from scratch, appending its events; and
(d) the scorer on prefixes of 1/4, 1/2 and all of the episode, to show it stays linear;
(e) a dataset built from its scores (every decision the rules did not penalise), replay of
the episode included: examples per second.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

from automem.bench.common import best_of, record_episodes
from automem.consumers.runtime import run_consumer
from automem.consumers.scorer import Scorer
from automem.engine.audit import provenance
from automem.engine.dataset.build import build_dataset
from automem.engine.dataset.select import Selection
from automem.engine.envs import make_env
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.scoring import Params, score, scorer_version
from automem.engine.structure.seeds import v0

ENV, TASK = "minihack", "river"


def run(steps: int = 4000, repeat: int = 3) -> dict:
    root = tempfile.mkdtemp(prefix="automem-bench-")
    try:
        with LmdbLog(root, fsync=False) as log:
            game = make_env(ENV, TASK)
            try:
                record_episodes(log, game, ENV, steps, max_steps=steps)
            finally:
                game.close()
            events = [r.event for r in log.read_stream("ep/bench-0")]
            limits, params = v0(ENV).limits, Params()
            version = scorer_version(params)
            decisions = len(score("bench-0", events, limits, params, version))
            build_s = best_of(lambda: provenance.build(events, limits), repeat)
            batch_s = best_of(lambda: score("bench-0", events, limits, params, version), repeat)
            t = time.perf_counter()
            run_consumer(Scorer(params), log, log, stop=threading.Event(), until_idle=True, report_every_s=1e9)
            consumer_s = time.perf_counter() - t
            n = sum(1 for e in events if type(e).__name__ == "StepTaken")
            sizes = [len(events) // 4, len(events) // 2, len(events)]
            growth = {str(sum(1 for e in events[:k] if type(e).__name__ == "StepTaken")):
                      round(best_of(lambda k=k: score("bench-0", events[:k], limits, params, version), repeat), 4)
                      for k in sizes}
            t = time.perf_counter()
            built = build_dataset(log, Path(root), Selection(min_score=0.0, balance=False))
            dataset_s = time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"name": "score", "env": f"{ENV}/{TASK}", "steps": n, "decisions": decisions,
            "provenance_build_s": round(build_s, 4), "batch_s": round(batch_s, 4), "consumer_s": round(consumer_s, 4),
            "batch_decisions_per_s": round(decisions / batch_s, 1),
            "consumer_decisions_per_s": round(decisions / consumer_s, 1),
            "batch_s_by_steps": growth, "dataset_examples": built.examples, "dataset_s": round(dataset_s, 3),
            "dataset_examples_per_s": round(built.examples / dataset_s, 1), "ratio": round(build_s / batch_s, 3)}
