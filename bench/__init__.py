"""Benchmarks: each prints JSON figures and a `ratio` against a same-run baseline."""

from __future__ import annotations

from typing import Callable


def _eventlog() -> dict:
    from .eventlog import run

    return run()


def _memory() -> dict:
    from .memory import run

    return run()


BENCHES: dict[str, Callable[[], dict]] = {"eventlog": _eventlog, "memory": _memory}
