"""Prompt building: pure functions from (structure, what happened, memory) to chat messages.

A phase's conversation only grows (system, situation, then answer/result pairs), so
backends that cache the prompt prefix pay only for each new turn.
"""

from __future__ import annotations

import hashlib

import msgspec

from automem.engine.envs.base import StepResult
from automem.engine.memory import MemoryState
from automem.engine.memory.state import line_count
from automem.schemas.structure import Structure

from .structures import GAMES

Message = dict[str, str]


def command_help(structure: Structure, phase: str) -> str:
    lines = []
    for c in structure.commands:
        if phase in c.phases and c.kind != "action":
            body = "|".join(c.params)
            syntax = f"<|{c.tag}|>{body}<|END|>" if c.params else f"<|{c.tag}|>"
            lines.append(f"  {syntax}  {c.help}")
    return "\n".join(lines)


def listing(memory: MemoryState) -> str:
    return ", ".join(f"{name} ({line_count(f.content)} lines)" for name, f in sorted(memory.files.items()))


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


def system_prompts(structure: Structure, actions: list[str]) -> tuple[str, str]:
    """The LOG and PLAN system prompts: fixed for an episode, so built once."""
    log = structure.log_system.format(game=GAMES[structure.env], commands=command_help(structure, "log"), actions="")
    plan = structure.plan_system.format(
        game=GAMES[structure.env], commands=command_help(structure, "plan"), actions=action_list(actions),
        example=actions[min(1, len(actions) - 1)] if actions else structure.fallback_action,
    )
    return log, plan


def log_messages(system: str, step: int, last: str, observation: str, memory: MemoryState) -> list[Message]:
    user = f"Step {step}. {last}\nObservation now:\n{observation}\nMemory files: {listing(memory)}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def plan_messages(system: str, step: int, observation: str, recent: list[str], memory: MemoryState) -> list[Message]:
    history = "\n".join(recent)
    user = (f"Step {step}. Observation:\n{observation}\n"
            + (f"Recent steps:\n{history}\n" if history else "")
            + f"Memory files: {listing(memory)}\nLook things up or commit an action.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def turn_feedback(results: list[str], errors: tuple[str, ...], last_turn: bool, phase: str) -> str:
    parts = results + [f"ERROR: {e}" for e in errors]
    text = "\n".join(parts) if parts else "(no command found)"
    if last_turn and phase == "plan":
        text += "\nThis is your last turn: answer with <|ACTION|>action name<|END|>."
    return text


def prompt_digest(messages: list[Message]) -> str:
    return hashlib.blake2b(msgspec.json.encode(messages), digest_size=16).hexdigest()


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
