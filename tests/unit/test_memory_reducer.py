"""The memory reducer: deterministic, total, and unable to escape the episode's memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from automem.engine.memory import EMPTY, MemoryState, apply, check_name
from automem.schemas.events import MemoryOp
from automem.schemas.structure import DEFAULT_LIMITS, MemoryLimits

from ..support.memory import ADVERSARIAL_NAMES, ops


def run_all(sequence: list[MemoryOp], limits: MemoryLimits = DEFAULT_LIMITS) -> tuple[MemoryState, list]:
    state, results = EMPTY, []
    for op in sequence:
        state, result = apply(state, op, limits)
        results.append(result)
    return state, results


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_deterministic_total_and_contained(sequence: list[MemoryOp]) -> None:
    state1, results1 = run_all(sequence)
    state2, results2 = run_all(sequence)
    assert state1.digest() == state2.digest()
    assert results1 == results2
    for name, f in state1.files.items():
        assert check_name(name, DEFAULT_LIMITS) is None, name
        assert len(f.content.encode()) <= DEFAULT_LIMITS.max_file_bytes
    assert len(state1.files) <= DEFAULT_LIMITS.max_files


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ADVERSARIAL_NAMES), st.sampled_from(["write", "append", "create", "upsert", "edit", "delete",
                                                           "rename", "trim", "head"]))
def test_bad_names_are_error_results(name: str, kind: str) -> None:
    args = ("k", "v") if kind in ("upsert", "edit") else ("1",) if kind in ("trim", "head") else ("v",)
    state, result = apply(EMPTY, MemoryOp(kind, name, args))
    if name in ("-",):  # a legal name under the default pattern
        return
    assert not result.ok and result.text.startswith("ERROR:")
    assert state is EMPTY


def test_vocabulary_results_and_provenance() -> None:
    s, r = apply(EMPTY, MemoryOp("append", "notes.txt", ("tree at 3,4",)))
    assert r.ok and r.written == {"notes.txt": s.files["notes.txt"].version}
    s, r = apply(s, MemoryOp("append", "notes.txt", ("water at 9,1",)))
    v = s.files["notes.txt"].version
    _, r = apply(s, MemoryOp("read", "notes.txt"))
    assert r.text == "tree at 3,4\nwater at 9,1\n" and r.read == {"notes.txt": v}
    _, r = apply(s, MemoryOp("search", "notes.txt", ("WATER",)))
    assert r.text == "2: water at 9,1" and r.read == {"notes.txt": v}
    _, r = apply(s, MemoryOp("search", "*", ("at",)))
    assert r.text.splitlines() == ["notes.txt:1: tree at 3,4", "notes.txt:2: water at 9,1"]
    assert apply(s, MemoryOp("tail", "notes.txt", ("1",)))[1].text == "water at 9,1"
    assert apply(s, MemoryOp("count", "notes.txt", ("at",)))[1].text == "2"
    assert apply(s, MemoryOp("list"))[1].text == "notes.txt (25 bytes, 2 lines)"
    s2, r = apply(s, MemoryOp("edit", "notes.txt", ("3,4", "5,6")))
    assert r.ok and "tree at 5,6" in s2.files["notes.txt"].content and r.read == {"notes.txt": v}
    _, r = apply(s, MemoryOp("edit", "notes.txt", (" at ", "x")))
    assert not r.ok and "occurs 2 times" in r.text
    s3, _ = apply(s, MemoryOp("upsert", "map.txt", ("3,4", "tree")))
    s3, _ = apply(s3, MemoryOp("upsert", "map.txt", ("3,4", "table")))
    assert s3.files["map.txt"].content == "3,4: table\n"
    s5 = s
    for key, text in (("pos:3,4", "tree"), ("pos", "home"), ("pos:3,4", "table"), ("pos:3", "stone")):
        s5, r = apply(s5, MemoryOp("upsert", "map.txt", (key, text)))
        assert r.ok, r.text
    assert s5.files["map.txt"].content == "pos:3,4: table\npos: home\npos:3: stone\n"
    _, r = apply(s5, MemoryOp("upsert", "map.txt", ("a: b", "c")))
    assert not r.ok and "cannot contain ': '" in r.text
    s4, r = apply(s, MemoryOp("delete", "notes.txt"))
    assert r.ok and s4.files == {} and r.written == {"notes.txt": ""}
    _, r = apply(s, MemoryOp("create", "notes.txt"))
    assert not r.ok and "already exists" in r.text
    _, r = apply(s, MemoryOp("frobnicate", "notes.txt"))
    assert not r.ok and "unknown command" in r.text


def test_limits_come_from_the_structure() -> None:
    limits = MemoryLimits(max_file_bytes=10, max_files=1, read_only=("rules.txt",), max_read_chars=5)
    s, r = apply(EMPTY, MemoryOp("write", "a.txt", ("x" * 11,)), limits)
    assert not r.ok and "limit" in r.text and s is EMPTY
    s, r = apply(EMPTY, MemoryOp("write", "a.txt", ("hello world"[:10],)), limits)
    assert r.ok
    _, r = apply(s, MemoryOp("write", "b.txt", ("x",)), limits)
    assert not r.ok and "limit" in r.text
    _, r = apply(s, MemoryOp("read", "a.txt"), limits)
    assert r.text.startswith("hello") and "more characters not shown" in r.text
    _, r = apply(MemoryState.from_files({"rules.txt": "r"}), MemoryOp("write", "rules.txt", ("x",)), MemoryLimits(read_only=("rules.txt",)))
    assert not r.ok and "read-only" in r.text
    sub = MemoryLimits(allow_subdirs=True)
    assert apply(EMPTY, MemoryOp("write", "maps/level1.txt", ("x",)), sub)[1].ok
    assert not apply(EMPTY, MemoryOp("write", "maps/../x", ("x",)), sub)[1].ok


def test_digest_ignores_insertion_order() -> None:
    a = MemoryState.from_files({"x": "1", "y": "2"})
    b, _ = apply(EMPTY, MemoryOp("write", "y", ("2",)))
    b, _ = apply(b, MemoryOp("write", "x", ("1",)))
    assert a.digest() == b.digest()
    assert a.digest() != MemoryState.from_files({"x": "1", "y": "3"}).digest()


def test_head_shows_the_first_lines() -> None:
    s = MemoryState.from_files({"log.txt": "a\nb\nc\n"})
    _, r = apply(s, MemoryOp("head", "log.txt", ("2",)))
    assert r.ok and r.text == "a\nb" and r.shown == {"log.txt": (0, 1)} and not r.cut
    _, r = apply(s, MemoryOp("head", "log.txt", ("x",)))
    assert not r.ok and "HEAD needs a line count" in r.text
    _, r = apply(s, MemoryOp("head", "log.txt", ("9",)), MemoryLimits(max_read_chars=2))
    assert r.shown == {"log.txt": (0,)} and r.cut  # what _truncate leaves of "a\nb\nc" at two characters


def test_rename_moves_a_file_and_refuses_what_it_must() -> None:
    s = MemoryState.from_files({"a.txt": "x\n", "b.txt": "y\n", "rules.txt": "r\n"})
    moved, r = apply(s, MemoryOp("rename", "a.txt", ("c.txt",)))
    assert r.ok and moved.contents() == {"b.txt": "y\n", "c.txt": "x\n", "rules.txt": "r\n"}
    assert r.written == {"a.txt": "", "c.txt": s.files["a.txt"].version} and r.read == {"a.txt": s.files["a.txt"].version}
    ro = MemoryLimits(read_only=("rules.txt",))
    for op, why in ((MemoryOp("rename", "a.txt", ("b.txt",)), "already exists"),
                    (MemoryOp("rename", "a.txt", ("../x",)), "path separators"),
                    (MemoryOp("rename", "a.txt", ("",)), "empty file name"),
                    (MemoryOp("rename", "nope.txt", ("z",)), "no file"),
                    (MemoryOp("rename", "rules.txt", ("z",)), "read-only"),
                    (MemoryOp("rename", "a.txt", ("rules.txt",)), "read-only")):
        after, r = apply(s, op, ro)
        assert not r.ok and why in r.text and after is s, (op, r.text)


def test_grep_matches_by_pattern_with_search_results() -> None:
    s = MemoryState.from_files({"map.txt": "x=3,y=4: tree\nx=10,y=2: water\nTable at home\n", "b.txt": "tree\n"})
    _, r = apply(s, MemoryOp("grep", "map.txt", (r"x=\d+,y=2",)))
    assert r.ok and r.text == "2: x=10,y=2: water" and r.shown == {"map.txt": (1,)}
    _, r = apply(s, MemoryOp("grep", "*", ("^t",)))  # ignoring case, like SEARCH
    assert r.text.splitlines() == ["b.txt:1: tree", "map.txt:3: Table at home"]
    assert r.shown == {"b.txt": (0,), "map.txt": (2,)}
    _, r = apply(s, MemoryOp("grep", "map.txt", ("zebra",)))
    assert r.ok and r.text == "no lines match 'zebra'" and not r.shown
    for bad in ("(a", "a{99}", "\\1", "(?=a)", "a" * 101, ""):
        _, r = apply(s, MemoryOp("grep", "map.txt", (bad,)))
        assert not r.ok and r.text.startswith("ERROR: bad pattern"), bad


def test_grep_is_bounded_whatever_the_pattern_and_the_memory() -> None:
    import time

    from automem.engine.memory.reducer import MAX_SCAN

    big = MemoryLimits(max_file_bytes=1 << 20, max_files=256)
    files = {f"f{i:02d}.txt": ("a" * 4000 + "!\n") * 200 for i in range(3)}  # 2.4M characters, over MAX_SCAN
    s = MemoryState.from_files(files)
    start = time.process_time()
    for pattern in ("(a+)+$", "(a|aa)*b", ".*.*.*.*z", "(a*)*(b*)*c", "(x+x+)+y"):
        _, r = apply(s, MemoryOp("grep", "*", (pattern,)), big)
        assert r.ok and r.cut and f"stopped after {MAX_SCAN} characters" in r.text, pattern
    assert time.process_time() - start < 5  # Python's re needs years for the first on one such line
    import random

    rng = random.Random(3)
    ab = MemoryState.from_files({"ab.txt": "".join(rng.choice("ab") for _ in range(20_000))})
    _, r = apply(ab, MemoryOp("grep", "ab.txt", ("(a|b)*a(a|b){20}c",)), big)
    assert not r.ok and "automaton states" in r.text  # a pattern whose DFA would blow up is refused, not run


def test_grep_agrees_with_python_re_on_its_subset() -> None:
    import random
    import re

    from automem.engine.memory.pattern import Matcher, compile_pattern

    rng = random.Random(7)
    for pattern in ("tree", "^tree", "tree$", "t.e", "[a-c]+x", "(ab|cd)*e", "x=\\d+,y=\\d+", "^$", "a{2,3}b",
                    "[^a]b", "(?:a|b)?c", "\\.t", "a|b|c", "^(a|b)*$", "colou?r", "[\\d,]+", "ab*?c", "\\s\\w"):
        m, rx = Matcher(compile_pattern(pattern)), re.compile(pattern, re.IGNORECASE)
        for _ in range(500):
            line = "".join(rng.choice("abcdext=,0123 .TREou") for _ in range(rng.randint(0, 12)))
            assert m.search(line) == bool(rx.search(line)), (pattern, line)


def test_line_cap_trims_the_oldest_lines_exactly() -> None:
    from automem.engine.memory import line_cap

    limits = MemoryLimits(max_file_lines=3)
    s = MemoryState.from_files({"log.txt": "1\n2\r\n3\n4\n5"})
    trim = line_cap(s, "log.txt", limits)
    assert trim == MemoryOp("trim", "log.txt", ("2",))
    s2, r = apply(s, trim, limits)
    assert r.ok and s2.files["log.txt"].content == "3\n4\n5"  # the rest byte for byte
    assert line_cap(s2, "log.txt", limits) is None and line_cap(s2, "nope", limits) is None
    assert line_cap(s, "log.txt", MemoryLimits()) is None  # off by default
