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
from automem.engine.memory.snapshots import REPLAY_LIMITS, is_write
from automem.schemas.events import LLMCalled, MemoryOpApplied, StepTaken
from automem.schemas.structure import MemoryLimits

Node = tuple  # ("d", step, phase, turn) | ("r", index) | ("w", index)


class Op(msgspec.Struct, frozen=True):
    """A memory op with what it did to the file's lines."""

    index: int  # position among the episode's ops
    event: MemoryOpApplied
    added: tuple[str, ...] = ()  # lines the write introduced
    removed: tuple[str, ...] = ()  # lines the write took away
    before: str = ""  # the file before the op (writes) or as read (reads)


class Trace(msgspec.Struct):
    """An episode's events, indexed for the walk."""

    steps: dict[int, StepTaken]
    calls: dict[tuple[int, str, int], LLMCalled]
    ops: list[Op]
    contents: dict[tuple[str, str], str]  # (file, version) -> content
    writes: dict[str, list[Op]]  # file -> the agent's successful writes to it, in order
    phases: dict[tuple[int, str], list[Op]]  # (step, phase) -> its ops, in order
    limits: MemoryLimits  # the episode's: what a read showed depends on them

    def facts_before(self, step: int) -> StepTaken | None:
        """The world a model saw at `step`: the state after the previous step."""
        return self.steps.get(step - 1)


def lines_of(text: str) -> list[str]:
    """A text's non-blank lines, stripped: how lines are compared across versions."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def build(events: Iterable[object], limits: MemoryLimits) -> Trace:
    """Index an episode's events; file contents are recovered by re-applying its writes."""
    steps: dict[int, StepTaken] = {}
    calls: dict[tuple[int, str, int], LLMCalled] = {}
    ops: list[Op] = []
    contents: dict[tuple[str, str], str] = {}
    writes: dict[str, list[Op]] = {}
    memory: MemoryState = EMPTY
    for event in events:
        if isinstance(event, StepTaken):
            steps[event.step] = event
        elif isinstance(event, LLMCalled):
            calls[(event.step, event.phase, event.turn)] = event
        elif isinstance(event, MemoryOpApplied):
            op, index = event.op, len(ops)
            old = memory.files.get(op.path)
            before = old.content if old else ""
            if is_write(event):  # recorded writes succeeded once: re-applied only to recover contents
                memory, _ = apply(memory, op, REPLAY_LIMITS)
                new = memory.files.get(op.path)
                after = new.content if new else ""
                if new:
                    contents[(op.path, new.version)] = after
                was, now = lines_of(before), lines_of(after)
                had, has = set(was), set(now)
                added = tuple(line for line in now if line not in had) or (
                    tuple(lines_of(op.args[0])[-1:]) if op.kind == "append" and op.args else ())
                ops.append(Op(index, event, added, tuple(line for line in was if line not in has), before))
                if event.phase != "init":
                    writes.setdefault(op.path, []).append(ops[-1])
            else:
                ops.append(Op(index, event, before=before))
            if old is not None:
                contents.setdefault((op.path, old.version), old.content)
    phases: dict[tuple[int, str], list[Op]] = {}
    for o in ops:
        phases.setdefault((o.event.step, o.event.phase), []).append(o)
    return Trace(steps, calls, ops, contents, writes, phases, limits)


def context(trace: Trace, step: int, phase: str, turn: int) -> list[Op]:
    """The reads whose results were in a model call's conversation: earlier turns, same phase."""
    return [o for o in trace.phases.get((step, phase), ()) if o.event.turn < turn
            and o.event.ok and o.event.op.kind in READ_KINDS and o.event.read_versions]


def _read(trace: Trace, read: Op) -> dict[str, str]:
    """The content of each file version `read` looked at."""
    return {name: trace.contents.get((name, v), "") for name, v in sorted(read.event.read_versions.items())}


def _hits(text: str, needle: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if needle in line.lower()]


def shown(trace: Trace, read: Op) -> dict[str, set[str]]:
    """The lines of each file that `read`'s result showed the model, as the reducer cut them."""
    op, limits = read.event.op, trace.limits
    content = _read(trace, read)
    if op.kind == "read":
        return {name: set(lines_of(text[: limits.max_read_chars])) for name, text in content.items()}
    if op.kind == "tail":
        raw = op.args[0].strip() if op.args else "10"
        n = max(1, min(int(raw), limits.max_tail_lines))
        return {name: set(lines_of("\n".join(text.splitlines()[-n:]))) for name, text in content.items()}
    if op.kind == "search" and op.args:
        needle, left, out = op.args[0].lower(), limits.max_search_hits, {}
        for name, text in content.items():
            hits = _hits(text, needle)[:left]
            left -= len(hits)
            out[name] = set(hits)
        return out
    return {}  # count and list show numbers and names, no lines


def truncated(trace: Trace, read: Op) -> bool:
    """Whether `read`'s result was cut short by the limits (a READ over its size, SEARCH over its hits)."""
    op, limits, content = read.event.op, trace.limits, _read(trace, read)
    if op.kind == "read":
        return any(len(text) > limits.max_read_chars for text in content.values())
    if op.kind == "search" and op.args:
        return sum(len(_hits(text, op.args[0].lower())) for text in content.values()) > limits.max_search_hits
    return False


def feeders(trace: Trace, read: Op) -> list[Op]:
    """The writes whose lines were in what `read` showed."""
    out: dict[int, Op] = {}
    for name, seen in shown(trace, read).items():
        out |= {w.index: w for w in trace.writes.get(name, ()) if w.index < read.index and seen.intersection(w.added)}
    return [out[i] for i in sorted(out)]


def decision_of(trace: Trace, step: int, phase: str) -> tuple[int, str, int] | None:
    """The call that committed a phase's outcome: its last turn."""
    turns = [t for (s, p, t) in trace.calls if s == step and p == phase]
    return (step, phase, max(turns)) if turns else None


def walk(trace: Trace, decisions: list[tuple[int, str, int]]) -> dict[Node, Node | None]:
    """Breadth-first from the failing decisions; maps each node reached to the node that pulled it in."""
    pulled: dict[Node, Node | None] = {("d", *d): None for d in decisions}
    queue = deque(pulled)
    while queue:
        node = queue.popleft()
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
