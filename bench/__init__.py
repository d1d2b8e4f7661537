"""Benchmarks: each prints JSON figures and a `ratio` against a same-run baseline."""

from __future__ import annotations

from typing import Callable


def _eventlog(env: str | None, bus: str | None) -> dict:
    from .eventlog import run, run_bus

    return run_bus(bus) if bus else run()


def _memory(env: str | None, bus: str | None) -> dict:
    from .memory import run

    return run()


def _overhead(env: str | None, bus: str | None) -> dict:
    from .overhead import run

    return run(env or "crafter")


def _replay(env: str | None, bus: str | None) -> dict:
    from .replay import run

    return run(env or "crafter")


def _score(env: str | None, bus: str | None) -> dict:
    from .score import run

    return run()


def _train(env: str | None, bus: str | None) -> dict:
    from .train import run

    return run()


def _loop2(env: str | None, bus: str | None) -> dict:
    from .loop2 import run_loop2

    return run_loop2(env or "crafter")


BENCHES: dict[str, Callable[[str | None, str | None], dict]] = {
    "eventlog": _eventlog, "memory": _memory, "overhead": _overhead, "replay": _replay, "score": _score, "train": _train,
    "loop2": _loop2,
}
