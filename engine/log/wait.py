"""Waiting on other processes through the log: look, sleep, look again, until a deadline."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from automem.schemas.errors import UserError

T = TypeVar("T")


def wait_for(look: Callable[[], T | None], wait_s: float, poll_s: float, late: Callable[[], str]) -> T:
    """The first thing `look` finds (not None); past `wait_s` seconds a UserError saying `late()`.
    The clock only bounds the wait: what is found never depends on it."""
    deadline = time.monotonic() + wait_s
    while (found := look()) is None:
        if time.monotonic() > deadline:
            raise UserError(late())
        time.sleep(poll_s)
    return found
