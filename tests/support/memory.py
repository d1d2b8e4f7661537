"""Memory ops for tests: hypothesis strategies that reach every primitive (adversarial names
and texts included), and a provenance trace of ops applied in order."""

from __future__ import annotations

from hypothesis import strategies as st

from automem.engine.audit import provenance
from automem.engine.memory import EMPTY, KINDS, apply
from automem.schemas.events import MemoryOp, MemoryOpApplied
from automem.schemas.structure import MemoryLimits

ADVERSARIAL_NAMES = [
    "", ".", "..", "../x", "../../etc/passwd", "/etc/passwd", "a/../../b", "C:\\x", "a\\b", "a/b",
    "x\x00y", "x\ny", "\x7f", "a" * 65, "notes.txt/", " notes", "nötes.txt", "\ud800", "-", "..txt",
]
names = st.one_of(st.sampled_from(["notes.txt", "map.txt", "log.txt", "a", "b.md"]), st.sampled_from(ADVERSARIAL_NAMES), st.text(max_size=12))
texts = st.one_of(st.text(max_size=80), st.sampled_from(["", "\n", "x" * 20_000, "line\nline2", "\ud800", "é" * 9000]))
PATTERNS = ["tree", "^#", "x=\\d+", "(a+)+$", "(a|aa)*b", "[", "a{99}", "(?=x)", ".*.*.*z", "^$", "t[a-z]*e"]
counts = st.one_of(st.integers(0, 60).map(str), st.sampled_from(["", "-1", "x", "9" * 12]))
# The newer primitives with arguments they can act on (random text rarely parses as a pattern or a count).
targeted = st.one_of(
    st.builds(lambda p, a: MemoryOp("grep", p, (a,)), st.one_of(names, st.just("*")), st.sampled_from(PATTERNS)),
    st.builds(lambda k, p, n: MemoryOp(k, p, (n,)), st.sampled_from(["head", "tail", "trim"]), names, counts),
    st.builds(lambda p, q: MemoryOp("rename", p, (q,)), names, names),
)
ops = st.one_of(
    st.builds(MemoryOp, kind=st.one_of(st.sampled_from(sorted(KINDS)), st.text(max_size=8)), path=names,
              args=st.lists(texts, max_size=3).map(tuple)),
    targeted,
)

LIMITS = MemoryLimits(max_read_chars=120, max_search_hits=20, max_tail_lines=50)


def _trace(ops: list[tuple[int, str, MemoryOp]], limits: MemoryLimits = LIMITS) -> provenance.Trace:
    """Events for ops applied in order: (step, phase, op); init ops seed files."""
    state, events = EMPTY, []
    for step, phase, op in ops:
        state, result = apply(state, op, limits)
        events.append(MemoryOpApplied(step=step, phase=phase, turn=0, op=op, ok=result.ok, result_digest="",
                                      read_versions=result.read, written_versions=result.written))
    return provenance.build(events, limits)
