"""Episode leases: an OS lock that the process writing an episode holds while it runs.

The log alone cannot tell an episode in progress from one whose writer died: both end
without EpisodeEnded. A lease is a `flock` on a file in the `leases/` folder of the log's
lease folder (the embedded store's); the kernel drops it when the process ends, even on
SIGKILL, so a reader that can take the lock knows no writer holds the episode. A log with
no lease folder (Kafka: episodes written by other machines) has no leases here: their
state is unknown to this one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from automem.engine.files import writing
from automem.engine.log.port import EventLog

LeaseState = Literal["held", "free", "unknown"]


def _file(folder: Path, episode: str) -> Path:
    return folder / "leases" / (hashlib.blake2b(episode.encode(), digest_size=12).hexdigest() + ".lock")


@contextmanager
def episode_lease(log: EventLog, episode: str) -> Iterator[None]:
    """Hold the episode's lease while the block runs (a no-op for a log with no lease folder)."""
    folder = log.lease_folder()
    if folder is None:
        yield
        return
    path = _file(folder, episode)
    with writing(path.parent, "the episode's lease"):
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def lease_state(log: EventLog, episode: str) -> LeaseState:
    """Whether a live process holds the episode's lease; never writes to the store."""
    folder = log.lease_folder()
    if folder is None:
        return "unknown"
    try:
        fd = os.open(_file(folder, episode), os.O_RDONLY)
    except OSError:
        return "free"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return "free"
    except BlockingIOError:
        return "held"
    finally:
        os.close(fd)
