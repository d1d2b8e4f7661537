"""Provenance: from the failing decisions back to the memory writes that fed them. Pure.

Memory content reaches a model only through the results of its read commands (prompts
list file names, never contents), and every read records the file versions it saw.
So a decision (one model call) depends on the reads made in the earlier turns of the
same phase; a read of a version depends on every write whose lines are still in it; and
a write is itself a decision, fed by the reads before it in its phase. Walking that
graph from the failing decisions finds every write that could have misled them.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

import msgspec

from automem.engine.memory import EMPTY, MemoryState, apply
from automem.engine.memory.reducer import READ_KINDS
from automem.engine.memory.snapshot import REPLAY_LIMITS, is_write
from automem.schemas.events import LLMCalled, MemoryOp, MemoryOpApplied, StepTaken
from automem.schemas.structure import ENGINE_PHASES, MemoryLimits

Node = tuple  # ("d", step, phase, turn) | ("r", index) | ("w", index)


class Op(msgspec.Struct, frozen=True):
    """A memory op with what it did to the file's lines, or what it showed of them."""

    index: int  # position among the episode's ops
    event: MemoryOpApplied
    added: tuple[str, ...] = ()  # writes: the lines this write put there (stripped, non-blank)
    removed: tuple[str, ...] = ()  # writes: the lines it took away
    repeated: bool = False  # an APPEND or UPSERT whose line was in the file already
    fed_by: tuple[int, ...] = ()  # reads: the writes that put the lines it showed there, in order
    cut: bool = False  # reads: the limits held part of the result back


class Trace(msgspec.Struct):
    """An episode's events, indexed once in both directions for walks and credit."""

    steps: dict[int, StepTaken]
    calls: dict[tuple[int, str, int], LLMCalled]
    ops: list[Op]
    contents: dict[tuple[str, str], str]  # (file, version) -> content
    writes: dict[str, list[Op]]  # file -> the agent's successful writes to it, in order
    phases: dict[tuple[int, str], list[Op]]  # (step, phase) -> its ops, in order
    limits: MemoryLimits  # the episode's: what a read showed depends on them
    readers: dict[int, list[int]] = {}  # write index -> the reads that showed its lines, in order
    last_turn: dict[tuple[int, str], int] = {}  # (step, phase) -> the turn that ended it

    def facts_before(self, step: int) -> StepTaken | None:
        """The world a model saw at `step`: the state after the previous step."""
        return self.steps.get(step - 1)


def lines_of(text: str) -> list[str]:
    """A text's non-blank lines, stripped: how lines are compared across versions."""
    return [line.strip() for line in text.splitlines() if line.strip()]


SEEDED = -1  # the owner of lines the structure seeded: no decision of the model's
DERIVED = -2  # the owner of lines the engine derived from env facts: no decision either
BLANK = -3  # blank lines carry nothing a read could credit anyone for


def _engine_owner(phase: str, index: int) -> int:
    """Who owns the lines an op of `phase` adds: the op itself, or the engine (init, derived)."""
    return SEEDED if phase == "init" else DERIVED if phase == "derived" else index


def _moved(op: MemoryOp, owners: dict[str, list[int]]) -> tuple[list[int], tuple[str, ...]] | None:
    """Owners after ops that move lines rather than write them (exact, duplicates included),
    or None for other ops: RENAME takes them to the new name, a line-cap trim drops the oldest."""
    if op.kind == "rename":
        return owners.pop(op.path, []), ()
    if op.kind == "trim":
        return owners.get(op.path, [])[int(op.args[0]):], ()
    return None


def _inherit(old: list[str], owners: list[int], new: list[str], me: int) -> tuple[list[int], tuple[str, ...]]:
    """Owners of `new`'s lines: a line the previous version had (same text, matched in order)
    keeps its writer, a blank line has none, any other line is `me`'s; also the old lines
    that did not survive."""
    pool: dict[str, deque[int]] = {}
    for i, line in enumerate(old):
        pool.setdefault(line.strip(), deque()).append(i)
    kept: set[int] = set()
    out = []
    for line in new:
        left = pool.get(line.strip())
        if not line.strip():
            out.append(BLANK)
        elif left:
            i = left.popleft()
            kept.add(i)
            out.append(owners[i])
        else:
            out.append(me)
    return out, tuple(old[i].strip() for i in range(len(old)) if i not in kept and old[i].strip())


def build(events: Iterable[object], limits: MemoryLimits) -> Trace:
    """Index an episode's events in one pass, linear in its length.

    Writes are re-applied (recorded writes succeeded once) to recover file contents and a
    per-version owner map: which write put each line there. Reads are re-applied under the
    episode's own limits, so what each one showed is the reducer's answer, and its feeders
    are the owners of exactly those lines."""
    steps: dict[int, StepTaken] = {}
    calls: dict[tuple[int, str, int], LLMCalled] = {}
    ops: list[Op] = []
    contents: dict[tuple[str, str], str] = {}
    writes: dict[str, list[Op]] = {}
    readers: dict[int, list[int]] = {}
    owners: dict[str, list[int]] = {}  # file -> the writer of each of its current lines
    memory: MemoryState = EMPTY
    for event in events:
        if isinstance(event, StepTaken):
            steps[event.step] = event
        elif isinstance(event, LLMCalled):
            calls[(event.step, event.phase, event.turn)] = event
        elif isinstance(event, MemoryOpApplied):
            op, index = event.op, len(ops)
            old = memory.files.get(op.path)
            if is_write(event):
                memory, _ = apply(memory, op, REPLAY_LIMITS)
                target = op.args[0].strip() if op.kind == "rename" else op.path
                new = memory.files.get(target)
                after = new.content.splitlines() if new else []
                me = _engine_owner(event.phase, index)
                moved = _moved(op, owners)
                if moved is None:
                    before = old.content.splitlines() if old else []
                    moved = _inherit(before, owners.get(op.path, []), after, me)
                owned, removed = moved
                owners[target] = owned
                if new:
                    contents[(target, new.version)] = new.content
                added = tuple(line.strip() for line, o in zip(after, owned) if o == me and line.strip())
                repeated = op.kind in ("append", "upsert") and bool(added) and added[-1] in set(lines_of(old.content if old else ""))
                ops.append(Op(index, event, added, removed, repeated))
                if event.phase not in ENGINE_PHASES:
                    writes.setdefault(op.path, []).append(ops[-1])
            elif event.ok and op.kind in READ_KINDS:
                _, result = apply(memory, op, limits)
                fed = sorted({owners[name][i] for name, shown in result.shown.items() for i in shown
                              if i < len(owners.get(name, ())) and owners[name][i] >= 0})
                for w in fed:
                    readers.setdefault(w, []).append(index)
                ops.append(Op(index, event, fed_by=tuple(fed), cut=result.cut))
            else:
                ops.append(Op(index, event))
            if old is not None:
                contents.setdefault((op.path, old.version), old.content)
    phases: dict[tuple[int, str], list[Op]] = {}
    for o in ops:
        phases.setdefault((o.event.step, o.event.phase), []).append(o)
    last_turn: dict[tuple[int, str], int] = {}
    for step, phase, turn in calls:
        last_turn[(step, phase)] = max(turn, last_turn.get((step, phase), turn))
    return Trace(steps, calls, ops, contents, writes, phases, limits, readers, last_turn)


def context(trace: Trace, step: int, phase: str, turn: int) -> list[Op]:
    """The reads whose results were in a model call's conversation: earlier turns, same phase."""
    return [o for o in trace.phases.get((step, phase), ()) if o.event.turn < turn
            and o.event.ok and o.event.op.kind in READ_KINDS and o.event.read_versions]


def feeders(trace: Trace, read: Op) -> list[Op]:
    """The writes whose lines were in what `read` showed."""
    return [trace.ops[i] for i in read.fed_by]


def decision_of(trace: Trace, step: int, phase: str) -> tuple[int, str, int] | None:
    """The call that committed a phase's outcome: its last turn."""
    turn = trace.last_turn.get((step, phase))
    return None if turn is None else (step, phase, turn)


def walk(trace: Trace, decisions: list[tuple[int, str, int]]) -> dict[Node, Node | None]:
    """Breadth-first from the failing decisions; maps each node reached to the node that pulled it in."""
    pulled: dict[Node, Node | None] = {("d", *d): None for d in decisions}
    queue = deque(pulled)
    while queue:
        node = queue.popleft()
        found: list[Node]
        if node[0] == "d":
            found = [("r", o.index) for o in context(trace, node[1], node[2], node[3])]
        elif node[0] == "r":
            found = [("w", w.index) for w in feeders(trace, trace.ops[node[1]])]
        else:
            e = trace.ops[node[1]].event
            found = [("d", e.step, e.phase, e.turn)]
        for nxt in found:
            if nxt not in pulled:
                pulled[nxt] = node
                queue.append(nxt)
    return pulled


def path(pulled: dict[Node, Node | None], start: Node) -> list[Node]:
    """The nodes from `start` forward to the failing decision that pulled it in."""
    out = [start]
    while (nxt := pulled.get(out[-1])) is not None:
        out.append(nxt)
    return out
