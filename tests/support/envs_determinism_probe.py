"""Play fixed action lists in every game and print digests, for tests/test_envs.py.

Run as a script in a fresh process (the test runs it twice, under different hash seeds):
the same seed and actions must give the same digests byte for byte. Each game is also
replayed after an episode of another seed in the same env object ("after_other"), which
must not change anything, and the first observation of that other seed is digested
("other_first") so the test can check that seeds matter.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys

import msgspec

from automem.engine.envs import make_env

GAMES = (("crafter", "default", 400), ("nethack", "challenge", 300), ("minihack", "mazewalk-15x15", 100),
         ("minihack", "quest-easy", 100))  # fmt: skip
SEED, OTHER_SEED = 11, 12


def play(env, seed: int, steps: int) -> tuple[str, str]:
    """Digests of the first observation and of every observation, fact and outcome of one
    seeded episode of random play."""
    observation, facts = env.reset(seed)
    first = hashlib.sha256(observation.encode()).hexdigest()
    digest = hashlib.sha256(observation.encode() + msgspec.json.encode(facts))
    rnd = random.Random(seed)
    actions = env.valid_actions() + ["no such action"]
    for _ in range(steps):
        result = env.step(rnd.choice(actions))
        digest.update(msgspec.json.encode(result))
        if result.done:
            break
    return first, digest.hexdigest()


def main() -> None:
    digests: dict[str, str] = {}
    for name, task, steps in GAMES:
        key = f"{name}/{task}"
        env = make_env(name, task)
        digests[f"{key}/first"], digests[f"{key}/play"] = play(env, SEED, steps)
        digests[f"{key}/other_first"], _ = play(env, OTHER_SEED, steps // 4)
        _, digests[f"{key}/after_other"] = play(env, SEED, steps)
        env.close()
    json.dump(digests, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
