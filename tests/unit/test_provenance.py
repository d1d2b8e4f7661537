"""Provenance: what a read showed is the reducer's answer (cuts included), and credit goes
to the write that put each shown line there (a per-version owner map), not to text matches."""

from __future__ import annotations

from automem.schemas.events import MemoryOp
from automem.schemas.structure import MemoryLimits

from ..support.memory import _trace


def test_a_search_cut_by_characters_credits_only_the_lines_it_showed() -> None:
    writes = [(i, "log", MemoryOp("append", "notes.txt", (f"tree seen at spot number {i:02d}",))) for i in range(15)]
    trace = _trace([*writes, (15, "plan", MemoryOp("search", "notes.txt", ("tree",)))])
    read = trace.ops[-1]
    assert read.cut is True
    shown = len(read.fed_by)
    assert 0 < shown < 15 and read.fed_by == tuple(range(shown))  # the first hits, as many as fit in 120 characters
    assert all(trace.readers.get(i) == [15] for i in range(shown)) and 14 not in trace.readers


def test_a_tail_cut_by_characters_credits_only_the_lines_it_showed() -> None:
    writes = [(i, "log", MemoryOp("append", "log.txt", (f"step {i}: moved north and saw water",))) for i in range(10)]
    trace = _trace([*writes, (10, "plan", MemoryOp("tail", "log.txt", ("6",)))])
    read = trace.ops[-1]
    assert read.cut is True and read.fed_by and read.fed_by[0] == 4 and read.fed_by[-1] < 9


def test_credit_follows_the_writer_of_each_line() -> None:
    trace = _trace([
        (0, "init", MemoryOp("write", "map.txt", ("seeded rule\n",))),
        (1, "log", MemoryOp("append", "map.txt", ("tree 2 north",))),
        (2, "log", MemoryOp("upsert", "map.txt", ("pos:3,4", "stone"))),
        (3, "log", MemoryOp("write", "map.txt", ("seeded rule\ntree 2 north\npos:3,4: water\n",))),  # restates two lines
        (4, "plan", MemoryOp("read", "map.txt")),
    ])
    read = trace.ops[-1]
    assert read.fed_by == (1, 3)  # the append still owns its line; the rewrite owns only the line it changed
    assert trace.ops[3].added == ("pos:3,4: water",) and trace.ops[3].removed == ("pos:3,4: stone",)


def test_a_line_added_again_after_removal_credits_the_one_who_added_it_again() -> None:
    trace = _trace([
        (1, "log", MemoryOp("append", "a.txt", ("wood 3",))),
        (2, "log", MemoryOp("write", "a.txt", ("nothing\n",))),
        (3, "log", MemoryOp("append", "a.txt", ("wood 3",))),
        (4, "plan", MemoryOp("search", "a.txt", ("wood",))),
    ])
    assert trace.ops[-1].fed_by == (2,)


def test_an_append_of_a_line_already_there_is_repeated() -> None:
    trace = _trace([(1, "log", MemoryOp("append", "a.txt", ("x",))), (2, "log", MemoryOp("append", "a.txt", ("x",)))])
    assert [o.repeated for o in trace.ops] == [False, True] and trace.ops[1].added == ("x",)


def test_a_blank_line_shown_credits_nobody() -> None:
    trace = _trace([
        (1, "log", MemoryOp("write", "a.txt", ("tree north\n\n",))),
        (2, "log", MemoryOp("append", "a.txt", ("stone near",))),
        (3, "plan", MemoryOp("read", "a.txt")),
    ], MemoryLimits(max_read_chars=12))  # shows "tree north" and the blank line, not "stone near"
    assert trace.ops[-1].fed_by == (0,)
