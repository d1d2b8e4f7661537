"""Group commit: buffering rules (on an injected clock), conflicts, reads, and a SIGKILL test
showing that a crash loses only whole, latest steps, within the stated bound, and that
every episode still replays."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automem.engine.log import ConflictError, LmdbLog
from automem.engine.log.group import GroupCommit, backend
from automem.engine.log.memory import MemoryLog
from automem.schemas.events import OutcomeObserved


def outcomes(n: int, tag: str = "x", start: int = 0) -> list[OutcomeObserved]:
    return [OutcomeObserved(step=start + i, kind="k", detail=tag) for i in range(n)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def other(log: LmdbLog) -> LmdbLog:
    """A second handle on the same store: it sees only what was committed."""
    return LmdbLog(log.path)


def test_fast_appends_are_buffered_and_committed_in_one_transaction(log: LmdbLog) -> None:
    clock = Clock()
    group = GroupCommit(log, window_s=0.05, max_batches=32, clock=clock)
    seq = 0
    for i in range(5):
        seq = group.append("ep/a", seq, outcomes(3, start=3 * i))
        clock.now += 0.001
    assert seq == 15 and group.pending == 5 and group.commits == 0
    with other(log) as view:
        assert view.head("ep/a") == 0  # nothing durable yet
    group.flush()
    assert group.pending == 0 and group.commits == 1
    with other(log) as view:
        assert [r.event.step for r in view.read_stream("ep/a")] == list(range(15))
        assert [r.seq for r in view.read_stream("ep/a")] == list(range(15))


def test_window_rule_commits_a_slow_step_at_once(log: LmdbLog) -> None:
    clock = Clock()
    group = GroupCommit(log, window_s=0.05, clock=clock)
    group.append("ep/a", 0, outcomes(1))
    clock.now += 0.02
    group.append("ep/a", 1, outcomes(1))
    assert group.pending == 2  # 0.02 s since the last commit: still inside the window
    clock.now += 0.04  # 0.06 s since the last commit (the wrapper's creation)
    group.append("ep/a", 2, outcomes(1))
    assert group.pending == 0 and group.commits == 1  # all three in one transaction
    clock.now += 0.2  # a slow step: its batch is committed at once, alone
    group.append("ep/a", 3, outcomes(1))
    assert group.pending == 0 and group.commits == 2
    clock.now += 0.001
    group.append("ep/a", 4, outcomes(1))
    assert group.pending == 1  # the window restarts at the end of each commit
    with other(log) as view:
        assert view.head("ep/a") == 4


def test_count_rule_commits_at_max_batches(log: LmdbLog) -> None:
    clock = Clock()  # never moves: only the count decides
    group = GroupCommit(log, window_s=0.05, max_batches=4, clock=clock)
    for i in range(10):
        group.append(f"ep/s{i % 3}", _head(group, f"ep/s{i % 3}"), outcomes(2, start=i))
    assert group.commits == 2 and group.pending == 2
    with other(log) as view:
        assert sum(view.head(f"ep/s{k}") for k in range(3)) == 16  # 8 batches of 2 durable
    group.close()
    with other(log) as view:
        assert sum(view.head(f"ep/s{k}") for k in range(3)) == 20


def _head(group: GroupCommit, stream: str) -> int:
    """The head as the writer tracks it, without the flush a head() read does."""
    return group._heads.get(stream) if stream in group._heads else group.log.head(stream)


def test_conflict_check_counts_buffered_batches(log: LmdbLog) -> None:
    group = GroupCommit(log, clock=Clock())
    assert group.append("ep/a", 0, outcomes(2)) == 2
    with pytest.raises(ConflictError) as caught:
        group.append("ep/a", 0, outcomes(1))
    assert (caught.value.expected, caught.value.actual) == (0, 2)
    assert group.append("ep/a", 2, outcomes(1)) == 3 and group.pending == 2
    assert group.append("ep/a", 3, []) == 3 and group.pending == 2  # an empty batch writes nothing
    log.append("ep/b", 0, outcomes(4))  # written behind the wrapper's back: its head comes from the store
    with pytest.raises(ConflictError):
        group.append("ep/b", 0, outcomes(1))
    assert group.append("ep/b", 4, outcomes(1)) == 5


def test_reads_see_buffered_batches(log: LmdbLog) -> None:
    group = GroupCommit(log, clock=Clock())
    group.append("ep/a", 0, outcomes(3))
    assert [r.event.step for r in group.read_stream("ep/a")] == [0, 1, 2] and group.pending == 0
    group.append("ep/b", 0, outcomes(1))
    assert group.streams("ep") == ["ep/a", "ep/b"] and group.pending == 0
    group.append("ep/a", 3, outcomes(1, start=3))
    assert group.head("ep/a") == 4 and group.pending == 0
    sub = group.subscribe(("ep",))
    assert [r.stream for r in sub.poll(timeout_s=0)] == ["ep/a"] * 3 + ["ep/b", "ep/a"]
    group.append("ep/b", 1, outcomes(2))
    assert sub.lag() == 2 and group.pending == 0
    assert len(sub.poll(timeout_s=0)) == 2
    group.append("ep/b", 3, outcomes(1))
    assert group.end_offset() == 8 and group.pending == 0  # the backend's own API flushes first too
    assert backend(group) is log


def test_close_and_exit_flush(tmp_path: Path) -> None:
    with GroupCommit(LmdbLog(tmp_path / "d"), clock=Clock()) as group:
        group.append("ep/a", 0, outcomes(5))
        assert group.pending == 1
    with LmdbLog(tmp_path / "d") as log:
        assert log.head("ep/a") == 5


def test_a_late_conflict_loses_no_other_batch(log: LmdbLog) -> None:
    """Another writer takes a seq between the wrapper's check and its commit: the other
    batches are committed, the conflicting one and its stream's later ones are dropped."""
    group = GroupCommit(log, clock=Clock())
    group.append("ep/a", 0, outcomes(2, "a"))
    group.append("ep/b", 0, outcomes(2, "b"))  # checked against the store's head 0 ...
    group.append("ep/a", 2, outcomes(1, "a"))
    group.append("ep/b", 2, outcomes(2, "b"))  # ... built on the batch above
    group.append("ep/c", 0, outcomes(1, "c"))
    with other(log) as rival:
        rival.append("ep/b", 0, outcomes(1, "rival"))  # ... but the rival got there first
    with pytest.raises(ConflictError) as caught:
        group.flush()
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == ("ep/b", 0, 1)
    assert group.pending == 0
    assert [r.event.detail for r in log.read_stream("ep/a")] == ["a"] * 3
    assert [r.event.detail for r in log.read_stream("ep/b")] == ["rival"]  # the rival's 1 event; ours never
    assert [r.event.detail for r in log.read_stream("ep/c")] == ["c"]
    assert group.append("ep/b", 1, outcomes(1, "b")) == 2  # the writer re-reads and goes on


def test_late_conflict_on_a_backend_without_append_many() -> None:
    inner = MemoryLog()
    group = GroupCommit(inner, clock=Clock())
    group.append("ep/a", 0, outcomes(1, "a"))
    group.append("ep/b", 0, outcomes(1, "b"))
    group.append("ep/c", 0, outcomes(1, "c"))
    group.append("ep/b", 1, outcomes(1, "b"))
    inner.append("ep/b", 0, outcomes(1, "rival"))
    with pytest.raises(ConflictError):
        group.flush()
    assert [inner.head(s) for s in ("ep/a", "ep/b", "ep/c")] == [1, 1, 1]
    assert [r.event.detail for r in inner.read_stream("ep/b")] == ["rival"]
    assert group.commits == 2 and group.pending == 0


def test_failed_commit_drops_only_the_triggering_batch(log: LmdbLog) -> None:
    clock = Clock()
    group = GroupCommit(log, window_s=0.05, clock=clock)
    group.append("ep/a", 0, outcomes(1))
    real = log.append_many

    def broken(batches: object) -> list[int]:
        raise OSError("disk full")

    log.append_many = broken  # type: ignore[method-assign]
    clock.now += 1
    with pytest.raises(OSError):
        group.append("ep/a", 1, outcomes(1))  # triggers the commit, which fails: this append failed
    assert group.pending == 1  # the batch acknowledged before is still buffered
    log.append_many = real  # type: ignore[method-assign]
    assert group.append("ep/a", 1, outcomes(1)) == 2
    group.flush()
    assert log.head("ep/a") == 2


def test_append_many_is_append_in_one_transaction(log: LmdbLog) -> None:
    assert log.append_many([("ep/a", 0, outcomes(2)), ("ep/b", 0, []), ("ep/a", 2, outcomes(1, start=2))]) == [2, 0, 3]
    assert [(r.offset, r.seq, r.event.step) for r in log.read_stream("ep/a")] == [(0, 0, 0), (1, 1, 1), (2, 2, 2)]
    assert log.head("ep/b") == 0 and log.end_offset() == 3
    with pytest.raises(ConflictError):
        log.append_many([("ep/c", 0, outcomes(1)), ("ep/a", 1, outcomes(1))])
    assert log.head("ep/c") == 0 and log.end_offset() == 3  # all or nothing


# ----------------------------------------------------------------------- SIGKILL

CHILD = r"""
import os, sys
from automem.engine.agent.episode import Episode, EpisodeSpec
from automem.engine.envs import make_env
from automem.engine.log.group import GroupCommit
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.policy.random_policy import RandomPolicy
from automem.engine.structure.registry import register_structure
from automem.engine.structure.seeds import v0
from automem.schemas.version import ENGINE_VERSION

path, acks, window, max_batches, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fd = os.open(acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

class Acked(GroupCommit):
    def append(self, stream, expected_seq, events):
        head = super().append(stream, expected_seq, events)
        os.write(fd, f"{stream} {head}\n".encode())  # the append has returned: acknowledged
        return head

log = Acked(LmdbLog(path, fsync=False), window_s=window, max_batches=max_batches)
env = make_env("nethack")
structure = v0("nethack")
version = register_structure(log, structure)
for seed in range(10**6):
    spec = EpisodeSpec(f"kill-{seed}", env, seed, steps, structure, version)
    Episode(log, spec, RandomPolicy(seed), None, ENGINE_VERSION).run()
    log.flush()  # an episode is durable when it ends
"""

STEPS = 30


class Boundaries(MemoryLog):
    """A MemoryLog that remembers where each appended batch ended."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: dict[str, list[int]] = {}

    def append(self, stream, expected_seq, events):  # type: ignore[no-untyped-def]
        head = super().append(stream, expected_seq, events)
        self.ends.setdefault(stream, []).append(head)
        return head


def reference(seed: int) -> Boundaries:
    """The uncut episode, re-run in memory: same seed, same policy, same structure."""
    from automem.engine.agent.episode import Episode, EpisodeSpec
    from automem.engine.envs import make_env
    from automem.engine.policy.random_policy import RandomPolicy
    from automem.engine.structure.registry import register_structure
    from automem.engine.structure.seeds import v0
    from automem.schemas.version import ENGINE_VERSION

    ref = Boundaries()
    structure = v0("nethack")
    version = register_structure(ref, structure)
    env = make_env("nethack")
    try:
        Episode(ref, EpisodeSpec(f"kill-{seed}", env, seed, STEPS, structure, version), RandomPolicy(seed), None,
                ENGINE_VERSION).run()
    finally:
        env.close()
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("window,max_batches,delay", [(60.0, 8, 0.3), (60.0, 8, 0.9), (0.05, 32, 0.5), (0.002, 32, 0.7)])
def test_sigkill_loses_only_whole_latest_steps_within_the_bound(tmp_path: Path, window: float, max_batches: int,
                                                                 delay: float) -> None:
    from automem.engine.episodes.replay import replay
    from automem.schemas.events import EpisodeEnded

    store, acks = tmp_path / "store", tmp_path / "acks"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(store), str(acks), str(window), str(max_batches),
                             str(STEPS)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (acks.exists() and acks.stat().st_size > 2000):  # the child is writing episodes
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "child died"
        assert time.monotonic() < deadline, "the child wrote nothing"
        time.sleep(0.02)
    time.sleep(delay * random.uniform(0.5, 1.5))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    acked = [(s, int(h)) for s, h in (line.split() for line in acks.read_text().splitlines() if line.strip())]
    with LmdbLog(store) as log:
        durable = {s: log.head(s) for s in {s for s, _ in acked} | set(log.streams("ep"))}
        # acknowledged batches that did not survive: the latest ones only, at most max_batches - 1
        lost = [i for i, (s, h) in enumerate(acked) if h > durable[s]]
        assert len(lost) <= max_batches - 1
        assert lost == list(range(len(acked) - len(lost), len(acked)))  # a suffix in append order
        cut = 0
        for stream in log.streams("ep"):
            seed = int(stream.rsplit("-", 1)[1])
            ref = reference(seed)
            events = [r.event for r in log.read_stream(stream)]
            # whole batches (= whole steps) only: exactly the uncut run's events up to one of its batch ends
            assert len(events) in ref.ends[stream], (stream, len(events), ref.ends[stream])
            assert events == [r.event for r in ref.read_stream(stream)][:len(events)]
            result = replay(log, stream.split("/", 1)[1])
            assert result.divergence is None, (stream, result.divergence)
            ended = isinstance(events[-1], EpisodeEnded)
            assert result.ended == ended
            cut += not ended
        assert cut <= 1  # episodes run one after another: only the one running at the kill is cut
