"""Time travel: nearest snapshot + tail equals full replay at every position."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from automem.engine.episodes.timetravel import (
    materialize,
    memory_after_step,
    memory_at_position,
)
from automem.engine.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.memory import EMPTY, WRITE_KINDS, apply, line_cap
from automem.engine.memory.state import line_count
from automem.schemas.events import MemoryOp, MemoryOpApplied
from automem.schemas.structure import DEFAULT_LIMITS, MemoryLimits

from ..support.memory import ops


def loggable(op: MemoryOp) -> bool:
    """Model text reaches the log as valid UTF-8 (the agent decodes it so); skip lone surrogates."""
    try:
        for text in (op.kind, op.path, *op.args):
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_episode(log: LmdbLog, episode: str, sequence: list[MemoryOp], steps: list[int],
                  limits: MemoryLimits = DEFAULT_LIMITS) -> list:
    """Apply ops live (as the runtime does, a line-cap trim logged after the write it
    follows) and log them; return the state after each op."""
    state, states, events = EMPTY, [EMPTY], []
    for op, step in zip(sequence, steps):
        state, result = apply(state, op, limits)
        events.append(MemoryOpApplied(step=step, phase="log", turn=0, op=op, ok=result.ok, result_digest="",
                                      memory_digest=state.digest()))
        trim = line_cap(state, op.path, limits) if result.ok and op.kind in WRITE_KINDS else None
        if trim is not None:
            state, result = apply(state, trim, limits)
            events.append(MemoryOpApplied(step=step, phase="cap", turn=0, op=trim, ok=result.ok, result_digest="",
                                          memory_digest=state.digest()))
        states.append(state)
    log.append(f"ep/{episode}", 0, events)
    return states


@settings(max_examples=60, deadline=None)
@given(st.lists(ops.filter(loggable), min_size=1, max_size=60), st.integers(1, 7), st.sampled_from([0, 1, 3]), st.data())
def test_snapshot_plus_tail_equals_full_replay(sequence: list[MemoryOp], every: int, cap: int,
                                               data: st.DataObject) -> None:
    """Also under a line cap (`cap` lines per file; 0: none): its trims are ops of the log."""
    steps = sorted(data.draw(st.lists(st.integers(0, 20), min_size=len(sequence), max_size=len(sequence))))
    with tempfile.TemporaryDirectory() as tmp, LmdbLog(tmp) as log:
        states = write_episode(log, "e", sequence, steps, MemoryLimits(max_file_lines=cap))
        if cap:
            assert all(line_count(f.content) <= cap for f in states[-1].files.values())
        materialize(log, SnapshotStore(log), "e", every)
        total = total_positions(log)
        assert SnapshotStore(log).positions("e") == list(range(every, total + 1, every))
        for step in range(-1, 22):
            expected = states[max((i + 1 for i, s in enumerate(steps) if s <= step), default=0)]
            assert memory_after_step(log, SnapshotStore(log), "e", step).digest() == expected.digest()
        last = memory_at_position(log, SnapshotStore(log), "e", total)
        assert last.digest() == states[-1].digest()


def total_positions(log: LmdbLog) -> int:
    from automem.engine.memory.reducer import WRITE_KINDS

    return sum(1 for r in log.read_stream("ep/e") if r.event.ok and r.event.op.kind in WRITE_KINDS)


def test_every_position_matches_with_and_without_snapshots() -> None:
    sequence = [MemoryOp("append", f"f{i % 3}.txt", (f"line {i}",)) for i in range(200)]
    with tempfile.TemporaryDirectory() as tmp, LmdbLog(tmp) as log:
        states = write_episode(log, "e", sequence, list(range(200)))
        before = [memory_at_position(log, SnapshotStore(log), "e", p).digest() for p in range(201)]
        materialize(log, SnapshotStore(log), "e", 16)
        after = [memory_at_position(log, SnapshotStore(log), "e", p).digest() for p in range(201)]
        assert before == after == [s.digest() for s in states]
        assert materialize(log, SnapshotStore(log), "e", 16) == 200  # idempotent
