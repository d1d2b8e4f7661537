"""Prompt building: pure functions from (structure, what happened, memory) to chat messages.

A phase's conversation only grows (system, situation, then answer/result pairs), so
backends that cache the prompt prefix pay only for each new turn.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from automem.engine.envs import GAMES
from automem.engine.envs.base import StepResult
from automem.engine.memory import MemoryState
from automem.engine.memory.state import line_count
from automem.schemas.structure import Structure

Message = dict[str, str]


def command_help(structure: Structure, phase: str) -> str:
    lines = []
    for c in structure.commands:
        if phase in c.phases and c.kind != "action":
            body = "|".join(c.params)
            syntax = f"<|{c.tag}|>{body}<|END|>" if c.params else f"<|{c.tag}|>"
            lines.append(f"  {syntax}  {c.help}" + (f" (in {c.file})" if c.file else ""))
    return "\n".join(lines)


def listing(memory: MemoryState, counts: dict[str, tuple[object, int]] | None = None) -> str:
    """`counts` (name -> (file, its line count)), kept by a caller across calls, spares
    recounting the files that did not change (files are immutable: same object, same count)."""
    if counts is None:
        return ", ".join(f"{name} ({line_count(f.content)} lines)" for name, f in sorted(memory.files.items()))
    parts = []
    for name, f in sorted(memory.files.items()):
        known = counts.get(name)
        if known is None or known[0] is not f:
            known = counts[name] = (f, line_count(f.content))
        parts.append(f"{name} ({known[1]} lines)")
    return ", ".join(parts)


def describe_last(action: str, result: StepResult, requested: str) -> str:
    if result.valid:
        head = f"Last action: {action}."
    else:
        head = f"Last action {requested!r} was invalid ({result.error}); {action} was executed instead."
    outcomes = "; ".join(f"{kind} {detail}".strip() for kind, detail, _ in result.outcomes)
    return f"{head} Reward: {result.reward:g}." + (f" Outcomes: {outcomes}." if outcomes else "")


def action_list(actions: list[str]) -> str:
    """Valid actions for a prompt; single letters (item and menu answers) collapse to one entry."""
    words = [a for a in actions if len(a) > 1]
    letters = [a for a in actions if len(a) == 1]
    return ", ".join(words) + (", or a single letter to answer a prompt (a-z, A-Z)" if letters else "")


# The placeholders a structure's prompts may use; every other brace is literal text.
PLACEHOLDERS = ("game", "commands", "actions", "example")
MAX_FEEDBACK = 65_536  # characters of one turn's command results shown to the model (16 full default reads)
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def render(template: str, values: dict[str, str]) -> str:
    """`template` with each exact `{name}` of PLACEHOLDERS replaced, in one pass (a value is
    never scanned again): no text can make it fail, unlike `str.format` on a literal `{`."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def system_prompts(structure: Structure, actions: list[str]) -> tuple[str, str]:
    """The LOG and PLAN system prompts: fixed for an episode, so built once. LOG is given no
    action list (it records, it does not act)."""
    values = {"game": GAMES[structure.env], "actions": "",
              "example": actions[min(1, len(actions) - 1)] if actions else structure.fallback_action}
    log = render(structure.log_system, values | {"commands": command_help(structure, "log")})
    plan = render(structure.plan_system, values | {"commands": command_help(structure, "plan"),
                                                   "actions": action_list(actions)})
    return log, plan


def log_messages(system: str, step: int, last: str, observation: str, memory: MemoryState,
                 files: str | None = None) -> list[Message]:
    """`files`: `listing(memory)` when the caller already has it."""
    files = listing(memory) if files is None else files
    user = f"Step {step}. {last}\nObservation now:\n{observation}\nMemory files: {files}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def plan_messages(system: str, step: int, observation: str, recent: list[str], memory: MemoryState,
                  files: str | None = None) -> list[Message]:
    """`files`: `listing(memory)` when the caller already has it."""
    files = listing(memory) if files is None else files
    history = "\n".join(recent)
    user = (f"Step {step}. Observation:\n{observation}\n"
            + (f"Recent steps:\n{history}\n" if history else "")
            + f"Memory files: {files}\nLook things up or commit an action.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def turn_feedback(results: list[str], errors: tuple[str, ...], last_turn: bool, phase: str) -> str:
    """What one turn's commands gave, cut at MAX_FEEDBACK: an answer of hundreds of reads would
    otherwise grow every later request of the phase by megabytes."""
    parts = results + [f"ERROR: {e}" for e in errors]
    text = "\n".join(parts) if parts else "(no command found)"
    if len(text) > MAX_FEEDBACK:
        text = text[:MAX_FEEDBACK] + f"\n(results cut at {MAX_FEEDBACK} characters: fewer commands per answer)"
    if last_turn and phase == "plan":
        text += "\nThis is your last turn: answer with <|ACTION|>action name<|END|>."
    return text


_json = msgspec.json.Encoder()


def prompt_digest(messages: list[Message]) -> str:
    return hashlib.blake2b(_json.encode(messages), digest_size=16).hexdigest()


class PromptDigest:
    """`prompt_digest` for conversations that open with one fixed system message.

    The JSON of a message list is `[` + the messages joined by `,` + `]`, so the hash state
    after `[system,` is computed once and copied: the same bytes are hashed, the same digest
    comes out, without re-encoding and re-hashing the system prompt on every call.
    """

    def __init__(self, system: str, role: str = "system") -> None:
        self.message = {"role": role, "content": system}
        self.head = hashlib.blake2b(b"[" + _json.encode(self.message) + b",", digest_size=16)

    def __call__(self, messages: list[Message]) -> str:
        first = messages[0] if messages else None
        if len(messages) < 2 or first != self.message or tuple(first) != ("role", "content"):
            return prompt_digest(messages)
        h = self.head.copy()
        h.update(memoryview(_json.encode(messages[1:]))[1:])  # the rest without its opening `[`
        return h.hexdigest()


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
