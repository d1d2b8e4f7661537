"""The command parser: model text -> commands, tolerant of what real models emit, never raising.

Accepts `<|TAG|>body<|END|>` and the variants models produce: `<TAG>`, `<|TAG>`, `<TAG|>`, `</TAG>`,
lower case, code fences, prose around and between commands, several commands per turn,
a missing `<|END|>` (the body then runs to the next tag or the end of the text).
Anything it cannot make sense of becomes an error the model is shown, never an exception.
"""

from __future__ import annotations

import re

import msgspec

from automem.schemas.structure import Command, Structure

MAX_COMMANDS = 16  # per turn: bounds the work one answer can cause
MAX_FIELD = 65_536

_TAG = re.compile(r"<(/?)\|?\s*([A-Za-z_]{2,20})\s*\|?>")  # "</X>" closes like <|END|>
_FENCE = re.compile(r"```[A-Za-z]*")


class Parsed(msgspec.Struct, frozen=True):
    tag: str
    kind: str
    params: tuple[str, ...]
    fields: tuple[str, ...]
    file: str = ""  # the command's fixed file, for commands without a `file` param


class ParseResult(msgspec.Struct, frozen=True):
    commands: tuple[Parsed, ...]
    errors: tuple[str, ...]
    done: bool
    action: str | None


def valid_tag(name: str) -> bool:
    """Whether a structure may name a command `name`: the parser finds it (and upper-cases
    what it finds), and it is not the END terminator."""
    return name != "END" and name == name.upper() and _TAG.fullmatch(f"<|{name}|>") is not None


def vocabulary(structure: Structure) -> dict[str, Command]:
    """The structure's commands by tag: build once per episode, pass to every parse."""
    return {c.tag: c for c in structure.commands}


def parse(text: str, vocab: dict[str, Command], phase: str) -> ParseResult:
    """Commands of the vocabulary allowed in `phase`, in the order written."""
    if "```" in text:
        text = _FENCE.sub("", text)
    # [prose, slash, tag, body, slash, tag, body, ...]: a body runs to the next tag or the end
    pieces = _TAG.split(text)
    commands: list[Parsed] = []
    errors: list[str] = []
    done, action = False, None
    for i in range(1, len(pieces), 3):
        tag = pieces[i + 1].upper()
        if tag == "END" or pieces[i]:
            continue
        command = vocab.get(tag)
        if command is None:
            errors.append(f"unknown command <|{tag[:20]}|>")
            continue
        if phase not in command.phases:
            errors.append(f"<|{tag}|> is not allowed in the {phase.upper()} phase")
            continue
        body = pieces[i + 2].strip()
        if command.kind == "done":
            done = True
            break
        if len(commands) >= MAX_COMMANDS:
            errors.append(f"more than {MAX_COMMANDS} commands in one answer; the rest were ignored")
            break
        fields = _fields(body, len(command.params))
        if command.kind == "action":
            if fields[0]:
                action = fields[0].splitlines()[0].strip()
                break
            errors.append("empty <|ACTION|>: write <|ACTION|>action name<|END|>")
            continue
        if len(body) > MAX_FIELD:
            errors.append(f"<|{tag}|> text is over {MAX_FIELD} characters")
            continue
        commands.append(Parsed(tag, command.kind, command.params, fields, command.file))
    return ParseResult(tuple(commands), tuple(errors), done, action)


def _fields(body: str, n: int) -> tuple[str, ...]:
    """Split a body into n `|`-separated fields; the last keeps any further `|`."""
    if n == 0:
        return ()
    parts = body.split("|", n - 1)
    if len(parts) < n:
        parts += [""] * (n - len(parts))
    last = parts.pop()
    out = [_clean(p, last=False) for p in parts]
    out.append(_clean(last, last=True))
    return tuple(out)


def _clean(field: str, last: bool) -> str:
    """Trim whitespace and the stray brackets/pipes of doubled tags such as <<|X|>>."""
    return field.strip().strip("<>|" if last else "<>").strip()


def action_index(valid: list[str]) -> dict[str, str]:
    """Valid actions by exact name and by lower-case name (exact wins: NetHack's letters
    'a' and 'A' differ): build once per episode, pass to resolve_action."""
    index = {action.lower(): action for action in valid}
    index.update({action: action for action in valid})
    return index


def resolve_action(raw: str, index: dict[str, str]) -> str:
    """The valid action a model meant: an exact (case-insensitive) name, else the longest
    valid name the text starts with ("Move West, then ..." -> "Move West"); else the text
    unchanged, for the env to reject."""
    exact = " ".join(raw.split())
    if exact in index:
        return index[exact]
    text = exact.lower()
    if text in index:
        return index[text]
    best = max((name for name in index if text.startswith(name) and not text[len(name)].isalnum()),
               key=len, default="")
    return index[best] if best else raw
