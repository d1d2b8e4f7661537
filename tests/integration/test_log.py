"""LMDB-specific log properties: global order, positions, multi-process and crash safety.

The port behaviour both backends share is in test_log_port.py."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automem.engine.log import LmdbLog, MissingData
from automem.schemas.events import OutcomeObserved


def outcomes(n: int, tag: str = "x", start: int = 0) -> list[OutcomeObserved]:
    return [OutcomeObserved(step=start + i, kind="k", detail=tag) for i in range(n)]


def test_long_stream_reads_across_chunks(log: LmdbLog) -> None:
    seq = 0
    for i in range(30):
        seq = log.append("ep/long", seq, outcomes(100, start=i * 100))
    assert [r.event.step for r in log.read_stream("ep/long")] == list(range(3000))
    assert [r.event.step for r in log.read_stream("ep/long", 2990)] == list(range(2990, 3000))
    assert sum(1 for _ in log.read_all()) == 3000


def test_consumer_position_survives_reopen(tmp_path: Path) -> None:
    with LmdbLog(tmp_path / "d") as log:
        assert log.load_position("materializer") == b""
        log.save_position("materializer", b"\x00\x2a")
    with LmdbLog(tmp_path / "d") as log:
        assert log.load_position("materializer") == b"\x00\x2a" and log.load_position("other") == b""


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MissingData, match="no automem data"):
        LmdbLog(tmp_path / "nothing", create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(MissingData, match="is a file"):
        LmdbLog(tmp_path / "file")


WRITER = r"""
import sys
from automem.engine.log import LmdbLog, ConflictError
from automem.schemas.events import OutcomeObserved
path, tag, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
log = LmdbLog(path)
for b in range(batches):
    events = [OutcomeObserved(step=b, kind=str(i), detail=tag) for i in range(size)]
    while True:  # two writers share "ep/shared": re-read the head and retry on conflict
        try:
            log.append("ep/shared", log.head("ep/shared"), events)
            break
        except ConflictError:
            pass
    log.append("ep/" + tag, b * size, events)
    print(b, flush=True)
"""


def _writer(path: Path, tag: str, batches: int, size: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(batches), str(size)],
                            stdout=subprocess.PIPE, text=True)


def test_two_processes_append_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "d"
    LmdbLog(path).close()
    procs = [_writer(path, tag, 150, 7) for tag in ("p", "q")]
    for p in procs:
        assert p.wait(timeout=120) == 0
    with LmdbLog(path) as log:
        shared = [r.event for r in log.read_stream("ep/shared")]
        assert len(shared) == 2 * 150 * 7
        for i in range(0, len(shared), 7):  # whole batches, never interleaved inside one
            batch = shared[i:i + 7]
            assert len({e.detail for e in batch}) == 1 and [e.kind for e in batch] == [str(k) for k in range(7)]
        for tag in ("p", "q"):
            assert log.head(f"ep/{tag}") == 150 * 7
        offsets = [r.offset for r in log.read_all()]
        assert offsets == list(range(len(offsets)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_sigkill_mid_stream_loses_no_acknowledged_batch(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "d"
    LmdbLog(path).close()
    proc = _writer(path, "k", 100_000, 25)
    rng = random.Random(seed)
    assert proc.stdout is not None
    acknowledged = int(proc.stdout.readline())  # the writer is up (imports take a while on a busy machine)
    deadline = time.monotonic() + rng.uniform(0.05, 1.2)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            acknowledged = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert acknowledged >= 0, "the writer never acknowledged a batch"
    with LmdbLog(path) as log:
        head = log.head("ep/k")
        assert head % 25 == 0, "a partial batch is visible"
        assert head >= (acknowledged + 1) * 25, "an acknowledged batch was lost"
        events = [r.event for r in log.read_stream("ep/k")]
        assert len(events) == head and [e.step for e in events[::25]] == list(range(head // 25))
        # the store is still writable after the crash
        log.append("ep/k", head, outcomes(1))


def test_every_backend_answers_the_port_capabilities(tmp_path: Path) -> None:
    """Callers ask the port, never the backend's type: durability, grouping, leases, snapshots."""
    from automem.engine.log.group import GroupCommit
    from automem.engine.log.memory import MemoryLog

    memory = MemoryLog()
    memory.flush()
    assert memory.grouped() is memory and memory.lease_folder() is None and memory.snapshots() is None
    with LmdbLog(tmp_path / "d") as log:
        log.flush()
        group = log.grouped()
        assert isinstance(group, GroupCommit) and group.grouped() is group
        assert log.lease_folder() == group.lease_folder() == log.path
        assert log.snapshots() is not None and group.snapshots() is not None
        group.append("ep/a", 0, outcomes(2))
        group.flush()
        assert log.head("ep/a") == 2
