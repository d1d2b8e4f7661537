"""The memory reducer: `apply(state, op, limits) -> (state, result)`, pure and total.

Every operation the agent can issue on its memory folder goes through here. Results are
the text the model will see next. Bad names, oversize writes and unknown commands come
back as error results: the reducer never raises and never touches anything but the
in-memory state it was given, so nothing can escape an episode's memory.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import msgspec

from automem.engine.memory.pattern import Matcher, PatternError, compile_pattern
from automem.engine.memory.state import (
    MemFile,
    MemoryState,
    content_version,
    line_count,
)
from automem.schemas.events import MemoryOp
from automem.schemas.structure import DEFAULT_LIMITS, MemoryLimits

READ_KINDS = frozenset({"read", "search", "grep", "tail", "head", "count", "list"})
WRITE_KINDS = frozenset({"append", "write", "create", "delete", "edit", "upsert", "rename", "trim"})
KINDS = READ_KINDS | WRITE_KINDS
ENGINE_KINDS = frozenset({"trim"})  # made by the engine (the line cap), never a command of a structure

# What a command of each kind takes: its file ("file", "any": a file or * for every file,
# "none") and how many further arguments, (min, max). Structure validation checks params by it.
ARITY: dict[str, tuple[str, int, int]] = {
    "read": ("file", 0, 0), "search": ("any", 1, 1), "grep": ("any", 1, 1), "tail": ("file", 0, 1),
    "head": ("file", 0, 1), "count": ("file", 0, 1), "list": ("none", 0, 0), "append": ("file", 1, 1),
    "write": ("file", 0, 1), "create": ("file", 0, 0), "delete": ("file", 0, 0), "edit": ("file", 2, 2),
    "upsert": ("file", 2, 2), "rename": ("file", 1, 1),
}
MAX_SCAN = 262_144  # characters a GREP looks at, at most: with pattern.py's bounds, its worst-case work


class OpResult(msgspec.Struct, frozen=True):
    """What an op returned, and which file versions it saw and made (provenance).

    For READ, HEAD, TAIL, SEARCH and GREP, `shown` names the lines (0-based, per file) whose text the
    result put in front of the model, after every cut the limits made, and `cut` says
    whether the limits held anything back: the one definition of what a read showed,
    used by the audit and the scorer alike."""

    ok: bool
    text: str
    read: dict[str, str] = {}
    written: dict[str, str] = {}
    shown: dict[str, tuple[int, ...]] = {}
    cut: bool = False


Handler = Callable[[MemoryState, MemoryOp, MemoryLimits], tuple[MemoryState, OpResult]]


def _err(state: MemoryState, text: str) -> tuple[MemoryState, OpResult]:
    return state, OpResult(False, "ERROR: " + text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=32)
def _name_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def check_name(name: str, limits: MemoryLimits) -> str | None:
    """Why `name` is not an acceptable memory file name, or None if it is."""
    if len(name) <= 128:  # the same few names come back op after op: remember the verdicts
        return _check_name_cached(name, limits.max_name_len, limits.name_pattern, limits.allow_subdirs)
    return _check_name(name, limits.max_name_len, limits.name_pattern, limits.allow_subdirs)


def _check_name(name: str, max_name_len: int, name_pattern: str, allow_subdirs: bool) -> str | None:
    if not name:
        return "empty file name"
    if len(name) > max_name_len:
        return f"file name longer than {max_name_len} characters"
    if _CONTROL.search(name):
        return "control characters in file name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute paths are not allowed"
    parts = name.split("/")
    if "\\" in name or (len(parts) > 1 and not allow_subdirs):
        return "path separators are not allowed; use a plain file name like notes.txt"
    pattern = _name_re(name_pattern)
    for part in parts:
        if part in ("", ".", ".."):
            return "'.', '..' and empty path parts are not allowed"
        if not pattern.fullmatch(part):
            return f"file name part {part!r} must match {name_pattern}"
    return None


_check_name_cached = lru_cache(maxsize=1024)(_check_name)


def _valid_text(*texts: str) -> bool:
    try:
        for text in texts:
            if not text.isascii():  # ASCII is valid UTF-8: only the rest can hold lone surrogates
                text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _missing(state: MemoryState, name: str) -> tuple[MemoryState, OpResult]:
    listing = ", ".join(sorted(state.files)) or "(none)"
    return _err(state, f"no file {name!r}; files: {listing}")


def _put(
    state: MemoryState, name: str, content: str, limits: MemoryLimits, verb: str,
    read: dict[str, str] | None = None,
) -> tuple[MemoryState, OpResult]:
    """Store `content` under `name` if the limits allow; the single write path."""
    if name in limits.read_only:
        return _err(state, f"{name} is read-only")
    size = _size(content)
    if size > limits.max_file_bytes:
        return _err(state, f"{name} would be {size} bytes, over the {limits.max_file_bytes}-byte limit; shorten or rewrite it")
    if name not in state.files and len(state.files) >= limits.max_files:
        return _err(state, f"already {len(state.files)} files, the limit; delete or reuse one")
    version = content_version(content)
    files = dict(state.files)
    files[name] = MemFile(content, version)
    result = OpResult(True, f"OK: {verb} {name} ({size} bytes)", read or {}, {name: version})
    return MemoryState.of(files), result


def _lines(content: str) -> list[str]:
    return content.splitlines()


def _truncate(text: str, limit: int, hint: str) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters not shown; {hint}]"


def _visible(parts: list[str], limit: int) -> int:
    """How many of `parts`, joined by newlines and cut at `limit` characters, show at least
    their first character: what `_truncate` leaves of them."""
    at = 0
    for n, part in enumerate(parts):
        if at >= limit:
            return n
        at += len(part) + 1
    return len(parts)


# ----------------------------------------------------------------------- handlers


def _read(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    f = state.files.get(op.path)
    if f is None:
        return _missing(state, op.path)
    text = _truncate(f.content, limits.max_read_chars, "use TAIL or SEARCH for the rest") or "(empty file)"
    lines = _lines(f.content)
    shown = tuple(range(_visible(lines, limits.max_read_chars)))
    return state, OpResult(True, text, {op.path: f.version}, shown={op.path: shown},
                           cut=len(f.content) > limits.max_read_chars)


def _search(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    keyword = op.args[0] if op.args else ""
    if not keyword.strip():
        return _err(state, "SEARCH needs a keyword: SEARCH file|keyword")
    needle = keyword.lower()
    return _matching(state, op, limits, lambda line: needle in line.lower(), None)


def _grep(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    """SEARCH by regular expression, in pattern.py's linear-time subset; at most MAX_SCAN
    characters are looked at, so no pattern and no memory can make it slow."""
    pattern = op.args[0] if op.args else ""
    try:
        matcher = Matcher(compile_pattern(pattern))
        return _matching(state, op, limits, matcher.search, MAX_SCAN)
    except PatternError as exc:
        return _err(state, f"bad pattern {pattern[:40]!r}: {exc}")


def _matching(state: MemoryState, op: MemoryOp, limits: MemoryLimits, test: Callable[[str], bool],
              budget: int | None) -> tuple[MemoryState, OpResult]:
    """The lines of a file (or of every file, for `*`) that pass `test`, as SEARCH shows them;
    `budget`: how many characters to look at before stopping (None: all)."""
    every = op.path in ("", "*")
    if not every and op.path not in state.files:
        return _missing(state, op.path)
    names = sorted(state.files) if every else [op.path]
    hits: list[str] = []
    where: list[tuple[str, int]] = []  # (file, line index) of each hit
    total, left, stopped = 0, budget, False
    for name in names:
        for number, line in enumerate(_lines(state.files[name].content), 1):
            if left is not None:
                if len(line) > left:
                    stopped, line = True, line[:left]
                    if not line:
                        break
                left -= len(line)
            if test(line):
                total += 1
                if len(hits) < limits.max_search_hits:
                    hits.append(f"{name}:{number}: {line}" if every else f"{number}: {line}")
                    where.append((name, number - 1))
            if stopped:
                break
        if stopped:
            break
    read = {name: state.files[name].version for name in names}
    more = f"\n[{total - len(hits)} more matches not shown]" if total > len(hits) else ""
    more += f"\n[stopped after {budget} characters; search fewer files]" if stopped else ""
    if not hits:
        return state, OpResult(True, f"no lines match {op.args[0]!r}" + more, read, cut=stopped)
    joined = "\n".join(hits) + more
    text = _truncate(joined, limits.max_read_chars, "narrow the search")
    shown: dict[str, list[int]] = {}
    for name, index in where[: _visible(hits, limits.max_read_chars)]:
        shown.setdefault(name, []).append(index)
    return state, OpResult(True, text, read, shown={k: tuple(v) for k, v in shown.items()},
                           cut=stopped or total > len(hits) or len(joined) > limits.max_read_chars)


def _tail(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    return _slice(state, op, limits, last=True)


def _head(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    return _slice(state, op, limits, last=False)


def _slice(state: MemoryState, op: MemoryOp, limits: MemoryLimits, last: bool) -> tuple[MemoryState, OpResult]:
    """TAIL (the last n lines) or HEAD (the first n), n capped at max_tail_lines."""
    f = state.files.get(op.path)
    if f is None:
        return _missing(state, op.path)
    raw = op.args[0].strip() if op.args else "10"
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        verb = "TAIL" if last else "HEAD"
        return _err(state, f"{verb} needs a line count, got {raw[:20]!r}: {verb} file|N")
    n = max(1, min(int(raw), limits.max_tail_lines))
    lines = _lines(f.content)
    part = lines[-n:] if last else lines[:n]
    text = "\n".join(part)
    first = len(lines) - len(part) if last else 0
    shown = tuple(range(first, first + _visible(part, limits.max_read_chars)))
    return state, OpResult(True, _truncate(text, limits.max_read_chars, "ask for fewer lines") or "(empty file)",
                           {op.path: f.version}, shown={op.path: shown}, cut=len(text) > limits.max_read_chars)


def _count(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    f = state.files.get(op.path)
    if f is None:
        return _missing(state, op.path)
    keyword = op.args[0].lower() if op.args else ""
    lines = _lines(f.content)
    n = sum(1 for line in lines if keyword in line.lower()) if keyword else len(lines)
    return state, OpResult(True, str(n), {op.path: f.version})


def _list(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    if not state.files:
        return state, OpResult(True, "(no files)")
    rows = [f"{name} ({_size(f.content)} bytes, {line_count(f.content)} lines)" for name, f in sorted(state.files.items())]
    return state, OpResult(True, "\n".join(rows), state.versions())


def _append(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    line = op.args[0] if op.args else ""
    if not line.strip():
        return _err(state, "APPEND needs text: APPEND file|line")
    old = state.files.get(op.path)
    base = old.content if old else ""
    if base and not base.endswith("\n"):
        base += "\n"
    read = {op.path: old.version} if old else {}
    return _put(state, op.path, base + line.rstrip("\n") + "\n", limits, "appended to", read)


def _write(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    return _put(state, op.path, op.args[0] if op.args else "", limits, "wrote")


def _create(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    if op.path in state.files:
        return _err(state, f"{op.path} already exists; use WRITE to replace it")
    return _put(state, op.path, "", limits, "created")


def _delete(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    if op.path not in state.files:
        return _missing(state, op.path)
    if op.path in limits.read_only:
        return _err(state, f"{op.path} is read-only")
    files = dict(state.files)
    del files[op.path]
    return MemoryState.of(files), OpResult(True, f"OK: deleted {op.path}", {}, {op.path: ""})


def _edit(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    f = state.files.get(op.path)
    if f is None:
        return _missing(state, op.path)
    if len(op.args) != 2 or not op.args[0]:
        return _err(state, "EDIT needs old and new text: EDIT file|old text|new text")
    old, new = op.args
    n = f.content.count(old)
    if n != 1:
        if n == 0:
            return _err(state, f"text to replace not found in {op.path}; READ it first")
        return _err(state, f"text to replace occurs {n} times in {op.path}; include more context to make it unique")
    return _put(state, op.path, f.content.replace(old, new, 1), limits, "edited", {op.path: f.version})


def _upsert(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    """Replace the line `KEY: text` (e.g. map coordinates) or append it.

    A key may hold colons ("pos:3,4"); the line's key ends at the first ": ", so a key
    cannot hold that separator itself."""
    if len(op.args) != 2 or not op.args[0].strip() or "\n" in op.args[0] + op.args[1]:
        return _err(state, "UPSERT needs a key and a one-line text: UPSERT file|key|text")
    key, text = op.args[0].strip(), op.args[1].strip()
    if ": " in key:
        return _err(state, "an UPSERT key cannot contain ': ' (it separates the key from the text)")
    old = state.files.get(op.path)
    lines = _lines(old.content) if old else []
    line = f"{key}: {text}"
    index = next((i for i, l in enumerate(lines) if l.startswith(f"{key}: ") or l == f"{key}:"), None)
    if index is None:
        lines.append(line)
    else:
        lines[index] = line
    read = {op.path: old.version} if old else {}
    return _put(state, op.path, "\n".join(lines) + "\n", limits, "updated", read)


def _rename(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    """Move a file to a new name: its lines keep their writers (provenance follows the move)."""
    f = state.files.get(op.path)
    if f is None:
        return _missing(state, op.path)
    target = op.args[0].strip() if op.args else ""
    problem = check_name(target, limits)
    if problem:
        return _err(state, f"{problem} (new name {target[:80]!r})")
    if op.path in limits.read_only or target in limits.read_only:
        return _err(state, f"{op.path if op.path in limits.read_only else target} is read-only")
    if target in state.files:
        return _err(state, f"{target} already exists; pick another name or delete it first")
    files = dict(state.files)
    files[target] = files.pop(op.path)
    return MemoryState.of(files), OpResult(True, f"OK: renamed {op.path} to {target}", {op.path: f.version},
                                           {op.path: "", target: f.version})


def _trim(state: MemoryState, op: MemoryOp, limits: MemoryLimits) -> tuple[MemoryState, OpResult]:
    """Drop a file's n oldest lines (the engine's line cap); the rest is kept byte for byte."""
    f = state.files.get(op.path)
    raw = op.args[0] if op.args else ""
    if f is None:
        return _missing(state, op.path)
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        return _err(state, f"trim needs a line count, got {raw[:20]!r}")
    kept = "".join(f.content.splitlines(keepends=True)[int(raw):])
    return _put(state, op.path, kept, limits, f"dropped the {raw} oldest lines of", {op.path: f.version})


def line_cap(state: MemoryState, path: str, limits: MemoryLimits) -> MemoryOp | None:
    """The trim a write to `path` needs under `limits.max_file_lines`, or None: the engine
    logs it as its own op, so memory derived from the log needs no limits to be right."""
    f = state.files.get(path)
    if not limits.max_file_lines or f is None:
        return None
    excess = line_count(f.content) - limits.max_file_lines
    return MemoryOp("trim", path, (str(excess),)) if excess > 0 else None


HANDLERS: dict[str, Handler] = {
    "read": _read, "search": _search, "grep": _grep, "tail": _tail, "head": _head, "count": _count,
    "list": _list, "append": _append, "write": _write, "create": _create, "delete": _delete,
    "edit": _edit, "upsert": _upsert, "rename": _rename, "trim": _trim,
}


def apply(
    state: MemoryState, op: MemoryOp, limits: MemoryLimits = DEFAULT_LIMITS
) -> tuple[MemoryState, OpResult]:
    """Apply one op. Total: every input gives a state and a result, never an exception."""
    handler = HANDLERS.get(op.kind)
    if handler is None:
        return _err(state, f"unknown command {op.kind[:40]!r}; commands: {', '.join(sorted(HANDLERS))}")
    if not _valid_text(op.path, *op.args):
        return _err(state, "text is not valid unicode")
    if op.kind != "list" and not (op.kind in ("search", "grep") and op.path in ("", "*")):
        problem = check_name(op.path, limits)
        if problem:
            return _err(state, f"{problem} (got {op.path[:80]!r})")
    return handler(state, op, limits)
