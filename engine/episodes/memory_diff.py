"""What changed in memory between two steps, per file, with the operations responsible."""

from __future__ import annotations

import difflib

import msgspec

from automem.engine.episodes.timetravel import memory_after_step
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.log.port import EventLog
from automem.engine.memory.snapshot import is_write
from automem.schemas.streams import episode_stream


class OpRef(msgspec.Struct):
    step: int
    phase: str
    turn: int
    op: str
    args: tuple[str, ...]


class FileChange(msgspec.Struct):
    status: str  # added | removed | changed
    diff: list[str]
    ops: list[OpRef]


def memory_diff(log: EventLog, store: SnapshotStore, episode: str, a: int, b: int) -> dict[str, FileChange]:
    """Files that differ between after-step-a and after-step-b (a < b), with the successful
    write ops of steps a+1..b that touched each of them (engine ops too: derived, cap)."""
    before = memory_after_step(log, store, episode, a).contents()
    after = memory_after_step(log, store, episode, b).contents()
    ops: dict[str, list[OpRef]] = {}
    for rec in log.read_stream(episode_stream(episode)):
        ev = rec.event
        if is_write(ev) and a < ev.step <= b:
            ref = OpRef(ev.step, ev.phase, ev.turn, ev.op.kind, ev.op.args)
            for name in ev.written_versions or (ev.op.path,):  # a RENAME changed both its names
                ops.setdefault(name, []).append(ref)
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        status = "added" if old is None else "removed" if new is None else "changed"
        diff = list(difflib.unified_diff((old or "").splitlines(), (new or "").splitlines(),
                                         f"{name}@{a}", f"{name}@{b}", lineterm=""))
        changes[name] = FileChange(status, diff, ops.get(name, []))
    return changes
