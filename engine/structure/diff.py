"""A readable diff of two structures (prompts, files, commands, budgets, limits), and which
of its changes are structural. Pure."""

from __future__ import annotations

import difflib

import msgspec

from automem.schemas.structure import Structure

PROMPTS = ("log_system", "plan_system", "log_prime", "plan_prime", "plan_lookup_prime")
WORDING = frozenset({*PROMPTS, "name", "env"})  # fields whose change alters text only
PARTS = frozenset({"initial_files", "commands", "limits"})


class Change(msgspec.Struct, frozen=True):
    part: str  # prompts | files | commands | budgets | limits
    what: str  # the field, file or command tag
    lines: tuple[str, ...]  # unified-diff lines, or "- old" / "+ new"
    structural: bool  # it changes what the agent can do, not only wording


def _text(part: str, what: str, a: str, b: str) -> Change:
    lines = tuple(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=1))[2:]
    return Change(part, what, lines, structural=False)


def _value(part: str, what: str, a: object, b: object, structural: bool = True) -> Change:
    return Change(part, what, tuple(f"{sign} {v!r}" for sign, v in (("-", a), ("+", b)) if v is not None), structural)


def _budgets(s: Structure) -> dict[str, object]:
    return {f: getattr(s, f) for f in s.__struct_fields__ if f not in WORDING and f not in PARTS}


def diff(a: Structure, b: Structure) -> list[Change]:
    """What changed from `a` to `b`, part by part, in a fixed order."""
    out = [_text("prompts", f, getattr(a, f), getattr(b, f)) for f in PROMPTS if getattr(a, f) != getattr(b, f)]
    for name in sorted(set(a.initial_files) | set(b.initial_files)):
        old, new = a.initial_files.get(name), b.initial_files.get(name)
        if old is None or new is None:
            out.append(_value("files", name, "(present)" if old is not None else None, "(present)" if new is not None else None))
        elif old != new:
            out.append(_text("files", name, old, new))
    ca, cb = {c.tag: c for c in a.commands}, {c.tag: c for c in b.commands}
    for tag in sorted(set(ca) | set(cb)):
        x, y = ca.get(tag), cb.get(tag)
        if x != y:
            same_but_help = x is not None and y is not None and msgspec.structs.replace(x, help=y.help) == y
            out.append(_value("commands", tag, msgspec.to_builtins(x) if x else None,
                              msgspec.to_builtins(y) if y else None, structural=not same_but_help))
    ba, bb = _budgets(a), _budgets(b)
    out += [_value("budgets", f, ba[f], bb[f]) for f in ba if ba[f] != bb[f]]
    out += [_value("limits", f, getattr(a.limits, f), getattr(b.limits, f))
            for f in a.limits.__struct_fields__ if getattr(a.limits, f) != getattr(b.limits, f)]
    return out
