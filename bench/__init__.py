"""Benchmarks: each prints JSON figures and a `ratio` against a same-run baseline."""

from __future__ import annotations

from typing import Callable

import msgspec


class BenchArgs(msgspec.Struct, frozen=True, kw_only=True):
    """What `automem bench` was given; each benchmark reads the fields it has a use for."""

    env: str | None = None
    bus: str | None = None
    policy: str | None = None
    concurrency: tuple[int, ...] = ()


def _eventlog(args: BenchArgs) -> dict:
    from automem.bench.eventlog import run, run_bus

    return run_bus(args.bus) if args.bus else run()


def _memory(args: BenchArgs) -> dict:
    from automem.bench.memory import run

    return run()


def _overhead(args: BenchArgs) -> dict:
    from automem.bench.overhead import run

    return run(args.env or "crafter")


def _replay(args: BenchArgs) -> dict:
    from automem.bench.replay import run

    return run(args.env or "crafter")


def _score(args: BenchArgs) -> dict:
    from automem.bench.score import run

    return run()


def _train(args: BenchArgs) -> dict:
    from automem.bench.train import run

    return run()


def _loop2(args: BenchArgs) -> dict:
    from automem.bench.loop2 import run_loop2

    return run_loop2(args.env or "crafter")


def _rollout(args: BenchArgs) -> dict:
    from automem.bench.rollout import run

    return run(args.env or "crafter", args.policy or "local", args.concurrency or (1, 4, 8))


def _learning(args: BenchArgs) -> dict:
    from automem.bench.learning import run

    return run(args.env or "crafter", args.policy or "local", args.concurrency[0] if args.concurrency else 4)


def _learning_v2(args: BenchArgs) -> dict:
    from automem.bench.learning_v2 import run

    return run(args.env or "crafter", args.policy or "local", args.concurrency[0] if args.concurrency else 4)


def _probe(args: BenchArgs) -> dict:
    from automem.bench.probe import run

    return run()


BENCHES: dict[str, Callable[[BenchArgs], dict]] = {
    "eventlog": _eventlog, "memory": _memory, "overhead": _overhead, "replay": _replay, "score": _score, "train": _train,
    "loop2": _loop2, "rollout": _rollout, "learning": _learning, "learning-v2": _learning_v2, "probe": _probe,
}
