"""The memory reducer: deterministic, total, and unable to escape the episode's memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from automem.engine.memory import EMPTY, KINDS, MemoryState, apply, check_name
from automem.schemas.events import MemoryOp
from automem.schemas.structure import DEFAULT_LIMITS, MemoryLimits

ADVERSARIAL_NAMES = [
    "", ".", "..", "../x", "../../etc/passwd", "/etc/passwd", "a/../../b", "C:\\x", "a\\b", "a/b",
    "x\x00y", "x\ny", "\x7f", "a" * 65, "notes.txt/", " notes", "nötes.txt", "\ud800", "-", "..txt",
]
names = st.one_of(st.sampled_from(["notes.txt", "map.txt", "log.txt", "a", "b.md"]), st.sampled_from(ADVERSARIAL_NAMES), st.text(max_size=12))
texts = st.one_of(st.text(max_size=80), st.sampled_from(["", "\n", "x" * 20_000, "line\nline2", "\ud800", "é" * 9000]))
ops = st.builds(
    MemoryOp,
    kind=st.one_of(st.sampled_from(sorted(KINDS)), st.text(max_size=8)),
    path=names,
    args=st.lists(texts, max_size=3).map(tuple),
)


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
@given(st.sampled_from(ADVERSARIAL_NAMES), st.sampled_from(["write", "append", "create", "upsert", "edit", "delete"]))
def test_bad_names_are_error_results(name: str, kind: str) -> None:
    state, result = apply(EMPTY, MemoryOp(kind, name, ("k", "v") if kind in ("upsert", "edit") else ("v",)))
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
