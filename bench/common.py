"""Helpers shared by the benchmarks: timing and realistic synthetic events."""

from __future__ import annotations

import random
import time
from typing import Callable

from automem.schemas.events import EnvFacts, LLMCalled, MemoryOp, MemoryOpApplied, StepTaken

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
