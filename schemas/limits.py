"""Bounds on what a run may ask for: every number stays inside what the log stores (msgpack
and LMDB keys are 64-bit) and inside what a machine can hold, so absurd input is refused at
the edge with the allowed range instead of overflowing later."""

from __future__ import annotations

from automem.schemas.errors import UserError

MAX_SEED = (1 << 63) - 1
MAX_EPISODES = 1_000_000
MAX_STEPS = 10_000_000
MAX_WORKERS = 256
MAX_CONCURRENCY = 1024  # episodes in flight in one process: each holds an env and its memory


def check_seeds(seed: int, episodes: int) -> None:
    """Episodes take seeds seed .. seed+episodes-1: the last must fit too."""
    if not 0 <= seed <= MAX_SEED - (episodes - 1):
        raise UserError(f"seeds {seed}..{seed + episodes - 1} do not fit: with --episodes {episodes} give "
                        f"--seed 0 to {MAX_SEED - (episodes - 1)}")


MAX_EVAL_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """`A-B` (inclusive) or `A,B,C`: distinct seeds in order, each in range."""
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            seeds = list(range(lo, hi + 1)) if 0 <= hi - lo < MAX_EVAL_SEEDS else []
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= s <= MAX_SEED for s in seeds):
        raise UserError(f"bad --seeds {text!r}: give A-B or A,B,C with distinct seeds 0 to {MAX_SEED} "
                        f"(at most {MAX_EVAL_SEEDS})")
    return seeds


def check_concurrency(concurrency: int) -> int:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UserError(f"--concurrency must be 1 to {MAX_CONCURRENCY} episodes in flight per process, "
                        f"got {concurrency}")
    return concurrency
