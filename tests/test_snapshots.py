"""Time travel: nearest snapshot + tail equals full replay at every position."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from automem.engine.log import LmdbLog
from automem.engine.memory import EMPTY, apply
from automem.engine.memory.snapshots import SnapshotStore, materialize, memory_after_step, memory_at_position
from automem.schemas.events import MemoryOp, MemoryOpApplied

from .test_memory_reducer import ops


def loggable(op: MemoryOp) -> bool:
    """Model text reaches the log as valid UTF-8 (the agent decodes it so); skip lone surrogates."""
    try:
        for text in (op.kind, op.path, *op.args):
            text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_episode(log: LmdbLog, episode: str, sequence: list[MemoryOp], steps: list[int]) -> list:
    """Apply ops live (as the runtime does) and log them; return the state after each op."""
    state, states, events = EMPTY, [EMPTY], []
    for op, step in zip(sequence, steps):
        state, result = apply(state, op)
        states.append(state)
        events.append(MemoryOpApplied(step=step, phase="log", turn=0, op=op, ok=result.ok, result_digest="",
                                      memory_digest=state.digest()))
    log.append(f"ep/{episode}", 0, events)
    return states


@settings(max_examples=60, deadline=None)
@given(st.lists(ops.filter(loggable), min_size=1, max_size=60), st.integers(1, 7), st.data())
def test_snapshot_plus_tail_equals_full_replay(sequence: list[MemoryOp], every: int, data: st.DataObject) -> None:
    steps = sorted(data.draw(st.lists(st.integers(0, 20), min_size=len(sequence), max_size=len(sequence))))
    with tempfile.TemporaryDirectory() as tmp, LmdbLog(tmp) as log:
        states = write_episode(log, "e", sequence, steps)
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
