"""Is a structure document one the engine can run safely? Pure.

Loop 1's reviewer writes structures; before one is stored or evaluated it must decode,
name only primitives the reducer has with parameters that fit them, keep the model in
charge of its memory in both phases (LOG writes, PLAN reads, PLAN acts, LOG ends with
DONE), and stay within bounds that keep an episode's cost and prompt size sane.
`validate` lists every problem; `check_structure` is the one call for untrusted bytes.
"""

from __future__ import annotations

import re

import msgspec

from automem.engine.agent.parser import valid_tag
from automem.engine.agent.prompts import MAX_FEEDBACK, PLACEHOLDERS, command_help
from automem.engine.envs import GAMES
from automem.engine.memory.reducer import ARITY, READ_KINDS, WRITE_KINDS, check_name
from automem.schemas.errors import UserError
from automem.schemas.structure import (
    DERIVED_FIELDS,
    PHASES,
    Command,
    MemoryLimits,
    Structure,
    decode_structure,
)

MAX_DOCUMENT = 4 << 20  # bytes of JSON, before decoding
MAX_PROMPT = 16_384  # characters of each system prompt
MAX_RENDERED = 32_768  # characters a system prompt may render to, placeholders filled (sent on every call)
ACTIONS_BOUND = 2_000  # characters any game's action list renders to (NetHack's, the longest, is under 1,000)
# One request's bound: the rendered system prompt, the first message, and every earlier turn's
# answer and results, each counted at its largest. Past it a request outgrows any context.
MAX_REQUEST = 1 << 20  # characters
OBSERVATION_BOUND = 16_384  # characters of any game's observation text (NetHack's BALROG text is under 6,000)
CHARS_PER_TOKEN = 8  # an answer of max_tokens, counted generously
LINE_BOUND = 600  # characters of a recent-steps line, or of a file's entry in the listing beyond its name
MAX_TEXT = 500  # characters of a help text, answer prefix, fallback action
MAX_INITIAL_BYTES = 1 << 20  # all seeded files together
MAX_COMMANDS = 64
MAX_DERIVED = 8
MAX_PARAMS = 4
MAX_PROBLEMS = 5  # in check_structure's one line

# Inclusive bounds of numeric settings: beyond them an episode's cost or prompts grow without use.
BOUNDS: dict[str, tuple[int, int]] = {
    "max_log_turns": (1, 20), "max_plan_turns": (1, 20), "max_tokens": (1, 4096), "recent_steps": (0, 50),
}
LIMIT_BOUNDS: dict[str, tuple[int, int]] = {
    "max_file_bytes": (1, 1 << 20), "max_files": (1, 256), "max_name_len": (1, 255), "max_read_chars": (1, 65_536),
    "max_search_hits": (1, 1_000), "max_tail_lines": (1, 1_000), "max_file_lines": (0, 100_000),
}
# A name pattern is a run of literals and character classes, each with at most one
# quantifier, two quantifiers in all: `re` then cannot backtrack badly on a name.
_SAFE_NAME_PATTERN = re.compile(r"(?:(?:\[(?:\\.|[^\]\\])+\]|\\[.\-_]|[A-Za-z0-9_.\-])[*+?]?)+")
_PLACEHOLDER_LIKE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PARAM = re.compile(r"[a-z][a-z_]{0,19}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def _limits(limits: MemoryLimits) -> list[str]:
    out = [f"limits.{k} is {getattr(limits, k)}, outside {lo}..{hi}"
           for k, (lo, hi) in LIMIT_BOUNDS.items() if not lo <= getattr(limits, k) <= hi]
    pattern = limits.name_pattern
    if len(pattern) > 100 or not _SAFE_NAME_PATTERN.fullmatch(pattern) or len(re.findall(r"[*+?]", pattern)) > 2:
        out.append("limits.name_pattern must be literals and [classes], at most two quantifiers, 100 characters")
    else:
        out += [f"limits.read_only: {p} ({name[:40]!r})" for name in limits.read_only
                if (p := check_name(name, limits))]
    return out


def _command(c: Command, limits: MemoryLimits) -> list[str]:
    tag, kind, params = c.tag, c.kind, c.params
    where = f"command {tag[:24]!r}"
    out = []
    if not valid_tag(tag):
        out.append(f"{where}: a tag is 2-20 capital letters or '_' (not END), as the parser reads tags")
    if not c.phases or any(p not in PHASES for p in c.phases) or len(set(c.phases)) != len(c.phases):
        out.append(f"{where}: phases must be some of {', '.join(PHASES)}")
    if len(c.help) > MAX_TEXT:
        out.append(f"{where}: help is over {MAX_TEXT} characters")
    if len(params) > MAX_PARAMS or len(set(params)) != len(params) or not all(_PARAM.fullmatch(p) for p in params):
        out.append(f"{where}: params are at most {MAX_PARAMS} distinct lower-case names")
        return out
    if kind == "done":
        return out + ([f"{where}: DONE takes no params and belongs to LOG only"] if params or c.phases != ("log",) else [])
    if kind == "action":
        return out + ([f"{where}: an action command takes one param and belongs to PLAN only"]
                      if len(params) != 1 or c.phases != ("plan",) else [])
    arity = ARITY.get(kind)
    if arity is None:
        known = ", ".join(sorted(ARITY) + ["action", "done"])
        return out + [f"{where}: unknown primitive {kind[:24]!r}; one of {known}"]
    takes, lo, hi = arity
    named = "file" in params
    if takes == "none" and (named or c.file):
        out.append(f"{where}: {kind} takes no file")
    if takes != "none" and named == bool(c.file):
        out.append(f"{where}: {kind} needs exactly one of a `file` param or a fixed file")
    if c.file and not (takes == "any" and c.file == "*") and (p := check_name(c.file, limits)):
        out.append(f"{where}: file: {p}")
    if not lo <= len(params) - named <= hi:
        out.append(f"{where}: {kind} takes {lo}..{hi} params besides the file, got {len(params) - named}")
    if kind in WRITE_KINDS and "plan" in c.phases:
        out.append(f"{where}: PLAN is read-only; {kind} belongs to LOG")
    return out


def _rendered_size(s: Structure, field: str, phase: str) -> int:
    """What a system prompt renders to, each placeholder counted at the size it fills in (the
    action list at its bound), without rendering, which could take gigabytes."""
    text = getattr(s, field)
    fills = {"game": len(GAMES.get(s.env, "")), "commands": len(command_help(s, phase)),
             "actions": ACTIONS_BOUND if phase == "plan" else 0, "example": MAX_TEXT}
    return len(text) + sum(fills[m] - len(m) - 2 for m in _PLACEHOLDER_LIKE.findall(text) if m in fills)


def _rendered(s: Structure) -> list[str]:
    """System prompts past MAX_RENDERED, and phases whose requests could pass MAX_REQUEST."""
    out = []
    for field, phase, turns in (("log_system", "log", s.max_log_turns), ("plan_system", "plan", s.max_plan_turns)):
        size = _rendered_size(s, field, phase)
        if size > MAX_RENDERED:
            out.append(f"{field} renders to about {size} characters (its placeholders filled), over {MAX_RENDERED}")
            continue
        first = OBSERVATION_BOUND + s.recent_steps * LINE_BOUND + s.limits.max_files * (s.limits.max_name_len + LINE_BOUND)
        request = size + first + (turns - 1) * (s.max_tokens * CHARS_PER_TOKEN + MAX_FEEDBACK)
        if request > MAX_REQUEST:
            out.append(f"a {phase} request can reach about {request} characters ({turns} turns of up to "
                       f"{s.max_tokens} tokens and their results), over {MAX_REQUEST}: fewer turns or max_tokens")
    return out


def validate(s: Structure) -> list[str]:
    """Every problem that keeps `s` from running safely as a structure ([] when none)."""
    out = []
    if s.env not in GAMES:
        out.append(f"env {s.env[:24]!r} is not one of {', '.join(GAMES)}")
    if not _NAME.fullmatch(s.name):
        out.append("name must be 1-64 letters, digits, '_', '.', '-'")
    out += [f"{k} is {getattr(s, k)}, outside {lo}..{hi}" for k, (lo, hi) in BOUNDS.items()
            if not lo <= getattr(s, k) <= hi]
    for field in ("log_system", "plan_system"):
        text = getattr(s, field)
        if len(text) > MAX_PROMPT:
            out.append(f"{field} is {len(text)} characters, over {MAX_PROMPT}")
        unknown = sorted({m for m in _PLACEHOLDER_LIKE.findall(text) if m not in PLACEHOLDERS})
        if unknown:
            out.append(f"{field} has unknown placeholders {', '.join(unknown[:5])}; only {', '.join(PLACEHOLDERS)}")
    for field in ("log_prime", "plan_prime", "plan_lookup_prime", "fallback_action"):
        if len(getattr(s, field)) > MAX_TEXT:
            out.append(f"{field} is over {MAX_TEXT} characters")
    if not s.fallback_action.strip():
        out.append("fallback_action is empty")
    limits = s.limits
    out += _limits(limits)
    if any(p.startswith("limits.name_pattern") for p in out):
        return out  # names cannot be checked against an unsafe pattern
    if len(s.commands) > MAX_COMMANDS:
        return out + [f"{len(s.commands)} commands, over {MAX_COMMANDS}"]
    for c in s.commands:
        out += _command(c, limits)
    tags = [c.tag for c in s.commands]
    if len(set(tags)) != len(tags):
        out.append("two commands share a tag")
    kinds = {p: {c.kind for c in s.commands if p in c.phases} for p in PHASES}
    if not kinds["log"] & WRITE_KINDS:
        out.append("LOG has no memory write command: the model must keep its own memory")
    if not kinds["plan"] & READ_KINDS:
        out.append("PLAN has no memory read command: the model must consult its own memory")
    if "done" not in kinds["log"]:
        out.append("LOG has no DONE command")
    if "action" not in kinds["plan"]:
        out.append("PLAN has no action command")
    out += _rendered(s)
    if len(s.initial_files) + len(s.derived) > limits.max_files:
        out.append(f"{len(s.initial_files)} initial and {len(s.derived)} derived files, over limits.max_files")
    total = 0
    for name, text in s.initial_files.items():
        if (p := check_name(name, limits)):
            out.append(f"initial file {name[:40]!r}: {p}")
        size = len(text.encode("utf-8"))
        total += size
        if size > limits.max_file_bytes:
            out.append(f"initial file {name[:40]!r} is {size} bytes, over limits.max_file_bytes")
    if total > MAX_INITIAL_BYTES:
        out.append(f"initial files hold {total} bytes, over {MAX_INITIAL_BYTES}")
    if len(s.derived) > MAX_DERIVED:
        return out + [f"{len(s.derived)} derived files, over {MAX_DERIVED}"]
    names = [d.name for d in s.derived]
    for d in s.derived:
        if (p := check_name(d.name, limits)):
            out.append(f"derived file {d.name[:40]!r}: {p}")
        if d.name in s.initial_files:
            out.append(f"derived file {d.name[:40]!r} is also an initial file")
        if not d.shows or any(f not in DERIVED_FIELDS for f in d.shows) or len(set(d.shows)) != len(d.shows):
            out.append(f"derived file {d.name[:40]!r}: shows must be some of {', '.join(DERIVED_FIELDS)}")
    if len(set(names)) != len(names):
        out.append("two derived files share a name")
    return out


def check_structure(document: bytes) -> Structure:
    """The structure a JSON document holds, or UserError with its first problems in one line."""
    if len(document) > MAX_DOCUMENT:
        raise UserError(f"structure document is {len(document)} bytes, over {MAX_DOCUMENT}")
    try:
        structure = decode_structure(document)
    except msgspec.ValidationError as exc:
        raise UserError(f"not a structure: {str(exc)[:200]}") from None
    except msgspec.DecodeError as exc:
        raise UserError(f"structure document is not JSON: {str(exc)[:200]}") from None
    except RecursionError:  # a hostile document: nested past anything a structure holds
        raise UserError("structure document nests too deeply to be a structure") from None
    problems = validate(structure)
    if problems:
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise UserError("invalid structure: " + "; ".join(problems[:MAX_PROBLEMS]) + more)
    return structure
