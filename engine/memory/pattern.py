"""Regular expressions a model may write, matched in time linear in the text. Pure.

Python's `re` backtracks and has no timeout: `(a+)+$` on a long line would hang the
engine, and a clock-based bound would make results depend on the machine (replay could
not reproduce them). Here a pattern is parsed into a small syntax tree, compiled to an
NFA, and run as a DFA built lazily during one scan: a character costs one dictionary
lookup once its transition is known, whatever the pattern. Every bound counts work,
never time, so a result depends only on (pattern, text):

  MAX_PATTERN  characters of a pattern
  MAX_REPEAT   the largest count in {m,n}
  MAX_NFA      NFA states once repeats are expanded
  MAX_DFA      DFA states one scan may build (each costs at most MAX_NFA steps)

Syntax, matched per line, anywhere in it, ignoring case: literals, `.`, `[abc]`, `[^a-z]`,
the escapes \\d \\w \\s \\D \\W \\S and escaped punctuation, `^` and `$`, groups `(...)` and
`(?:...)`, alternation `|`, the quantifiers `*` `+` `?` `{m}` `{m,}` `{m,n}`. No
backreferences, lookaround or possessive quantifiers: they are refused, not guessed
(lazy ones are accepted: whether a line matches does not depend on them).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

MAX_PATTERN = 100
MAX_REPEAT = 32
MAX_NFA = 400
MAX_DFA = 1_000

BOL, EOL = "^^", "$$"  # two-character tokens: never a character of the text


class PatternError(ValueError):
    """A pattern outside the subset or its bounds; the message says which."""


_CLASSES: dict[str, Callable[[str], bool]] = {
    "d": str.isdigit, "w": lambda c: c.isalnum() or c == "_", "s": str.isspace,
    "D": lambda c: not c.isdigit(), "W": lambda c: not (c.isalnum() or c == "_"), "S": lambda c: not c.isspace(),
}
_META = set("\\^$.|?*+()[]{}")

# A character set: (negated, characters, ranges, escape classes); `.` is the empty negated set.
CharSet = tuple[bool, frozenset[str], tuple[tuple[str, str], ...], str]
DOT: CharSet = (True, frozenset(), (), "")


def _in(cs: CharSet, c: str) -> bool:
    """Whether `c` is in the set, ignoring case."""
    negated, chars, ranges, classes = cs
    hit = False
    for v in {c, c.lower(), c.upper()}:
        if v in chars or any(lo <= v <= hi for lo, hi in ranges) or any(_CLASSES[k](v) for k in classes):
            hit = True
            break
    return hit != negated


# ------------------------------------------------------------------------ parsing
# Nodes: ("set", CharSet) | ("bol",) | ("eol",) | ("cat", nodes) | ("alt", nodes) | ("rep", node, m, n|None)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def take(self) -> str:
        c = self.peek()
        self.i += 1
        return c

    def alt(self) -> tuple:
        branches = [self.cat()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.cat())
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def cat(self) -> tuple:
        items = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified(self.atom()))
        return ("cat", tuple(items))

    def atom(self) -> tuple:
        c = self.take()
        if c == "(":
            if self.text.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise PatternError("only (...) and (?:...) groups are supported")
            node = self.alt()
            if self.take() != ")":
                raise PatternError("a '(' is not closed")
            return node
        if c == "[":
            return ("set", self.charset())
        if c == ".":
            return ("set", DOT)
        if c == "^":
            return ("bol",)
        if c == "$":
            return ("eol",)
        if c == "\\":
            return ("set", self.escape())
        if c in "*+?{":
            raise PatternError(f"nothing to repeat before {c!r} at {self.i - 1}")
        if c in "])}":
            raise PatternError(f"unbalanced {c!r} at {self.i - 1}; escape it as \\{c}")
        return ("set", (False, frozenset(c), (), ""))

    def escape(self) -> CharSet:
        c = self.take()
        if c in _CLASSES:
            return (False, frozenset(), (), c)
        if c == "t":
            return (False, frozenset("\t"), (), "")
        if c and not c.isalnum():
            return (False, frozenset(c), (), "")
        raise PatternError(f"unsupported escape \\{c} (backreferences, \\b and the like are not supported)")

    def charset(self) -> CharSet:
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        chars: set[str] = set()
        ranges: list[tuple[str, str]] = []
        classes = ""
        first = True
        while True:
            c = self.take()
            if c == "":
                raise PatternError("a '[' is not closed")
            if c == "]" and not first:
                break
            first = False
            if c == "\\":
                esc = self.escape()
                classes += esc[3]
                chars |= esc[1]
                continue
            if self.peek() == "-" and self.i + 1 < len(self.text) and self.text[self.i + 1] != "]":
                self.i += 1
                hi = self.take()
                if hi == "\\":
                    hi = self.take()
                if hi < c:
                    raise PatternError(f"bad range {c}-{hi}")
                ranges.append((c, hi))
                continue
            chars.add(c)
        return (negated, frozenset(chars), tuple(ranges), classes)

    def quantified(self, node: tuple) -> tuple:
        while True:
            c = self.peek()
            if c in ("*", "+", "?"):
                self.i += 1
                m, n = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            elif c == "{":
                m, n = self.counts()
            else:
                return node
            if self.peek() == "+":
                raise PatternError("possessive quantifiers are not supported")
            if self.peek() == "?":
                self.i += 1  # lazy: whether a line matches is the same either way
            node = ("rep", node, m, n)

    def counts(self) -> tuple[int, int | None]:
        end = self.text.find("}", self.i)
        body = self.text[self.i + 1:end] if end > 0 else ""
        lo, comma, hi = body.partition(",")
        if end < 0 or not lo.isdigit() or (hi and not hi.isdigit()):
            raise PatternError("a count must be {m}, {m,} or {m,n}")
        self.i = end + 1
        m = int(lo)
        n = None if comma and not hi else int(hi) if hi else m
        if m > MAX_REPEAT or (n is not None and (n > MAX_REPEAT or n < m)):
            raise PatternError(f"counts must be at most {MAX_REPEAT}, and m <= n")
        return m, n


# ------------------------------------------------------------------------ the NFA
# States: ("set", CharSet, next) | ("bol", next) | ("eol", next) | ("split", nexts) | ("match",)


class Nfa:
    def __init__(self, tree: tuple) -> None:
        self.states: list[tuple] = [("match",)]
        self.start = self._build(tree, 0)

    def _new(self, state: tuple) -> int:
        if len(self.states) >= MAX_NFA:
            raise PatternError(f"the pattern expands to over {MAX_NFA} states; use fewer or smaller repeats")
        self.states.append(state)
        return len(self.states) - 1

    def _build(self, node: tuple, nxt: int) -> int:
        """The start state of `node` continuing to `nxt` (built back to front)."""
        kind = node[0]
        if kind == "set":
            return self._new(("set", node[1], nxt))
        if kind in ("bol", "eol"):
            return self._new((kind, nxt))
        if kind == "cat":
            for item in reversed(node[1]):
                nxt = self._build(item, nxt)
            return nxt
        if kind == "alt":
            return self._new(("split", tuple(self._build(b, nxt) for b in node[1])))
        _, body, m, n = node
        if n is None:
            loop = self._new(("split", ()))
            self.states[loop] = ("split", (self._build(body, loop), nxt))
            cur = loop
        else:
            cur = nxt
            for _ in range(n - m):
                cur = self._new(("split", (self._build(body, cur), nxt)))
        for _ in range(m):
            cur = self._build(body, cur)
        return cur

    def closure(self, seeds: set[int] | list[int]) -> frozenset[int]:
        """The states reachable from `seeds` without consuming anything (splits followed)."""
        out: set[int] = set()
        stack = list(seeds)
        while stack:
            s = stack.pop()
            if s in out:
                continue
            out.add(s)
            if self.states[s][0] == "split":
                stack.extend(self.states[s][1])
        return frozenset(out)


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Nfa:
    """The NFA of a pattern; PatternError says what is wrong with it."""
    if not pattern:
        raise PatternError("empty pattern")
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"pattern longer than {MAX_PATTERN} characters")
    parser = _Parser(pattern)
    tree = parser.alt()
    if parser.i < len(pattern):
        raise PatternError(f"unbalanced ')' at {parser.i}")
    return Nfa(tree)


class Matcher:
    """One scan's DFA over an NFA, built as the text needs it; fresh per scan so that whether
    MAX_DFA is reached depends on that scan's text alone."""

    def __init__(self, nfa: Nfa) -> None:
        self.nfa = nfa
        self.origin = nfa.closure([nfa.start])
        self.ids: dict[frozenset[int], int] = {}
        self.sets: list[frozenset[int]] = []
        self.table: list[dict[str, int]] = []
        self.accept: list[bool] = []
        self.bol = self._step(self._id(self.origin), BOL)

    def _id(self, states: frozenset[int]) -> int:
        found = self.ids.get(states)
        if found is None:
            if len(self.sets) >= MAX_DFA:
                raise PatternError(f"the pattern needs over {MAX_DFA} automaton states on this text; simplify it")
            found = self.ids[states] = len(self.sets)
            self.sets.append(states)
            self.table.append({})
            self.accept.append(0 in states)
        return found

    def _step(self, cur: int, token: str) -> int:
        if self.accept[cur]:
            nxt = cur  # a match stays a match
        else:
            states = self.nfa.states
            moved = set(self.origin)  # unanchored: a match may start at any position
            for s in self.sets[cur]:
                st = states[s]
                kind = st[0]
                if (kind == "set" and len(token) == 1 and _in(st[1], token)) or \
                        (kind == "bol" and token == BOL) or (kind == "eol" and token == EOL):
                    moved.add(st[-1])
            nxt = self._id(self.nfa.closure(moved))
        self.table[cur][token] = nxt
        return nxt

    def search(self, line: str) -> bool:
        """Whether the pattern matches somewhere in `line` (one line, no newline)."""
        cur, table, accept = self.bol, self.table, self.accept
        for c in line:
            if accept[cur]:
                return True
            nxt = table[cur].get(c)
            cur = self._step(cur, c) if nxt is None else nxt
        if accept[cur]:
            return True
        nxt = table[cur].get(EOL)
        return accept[self._step(cur, EOL) if nxt is None else nxt]
