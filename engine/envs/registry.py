"""The game registry: names, tasks and `make_env`.

Importing this package is cheap: the game packages (crafter, nle, minihack) load only when
an env of theirs is made.
"""

from __future__ import annotations

from automem.engine.envs.base import StepResult, TextEnv
from automem.schemas.agent import check_format
from automem.schemas.errors import UserError

ENVS: tuple[str, ...] = ("crafter", "nethack", "minihack")
# How prompts name each game.
GAMES: dict[str, str] = {"crafter": "Crafter (a 2D survival game)", "nethack": "NetHack",
                         "minihack": "MiniHack (a NetHack level)"}
# MiniHack's evaluation suite: BALROG's 8 tasks, with two stand-ins for Boxoban (see
# minihack_env); the first is the default. Kept here so the registry needs no game import.
MINIHACK_IDS: dict[str, str] = {
    "corridor-r3": "MiniHack-Corridor-R3-v0",
    "mazewalk-9x9": "MiniHack-MazeWalk-9x9-v0",
    "mazewalk-15x15": "MiniHack-MazeWalk-15x15-v0",
    "corridorbattle-dark": "MiniHack-CorridorBattle-Dark-v0",
    "quest-easy": "MiniHack-Quest-Easy-v0",
    "quest-medium": "MiniHack-Quest-Medium-v0",
    "river": "MiniHack-River-v0",  # stands in for Boxoban-Medium: a boulder-pushing puzzle
    "room-ultimate-15x15": "MiniHack-Room-Ultimate-15x15-v0",  # stands in for Boxoban-Hard
}
TASKS: dict[str, tuple[str, ...]] = {
    "crafter": ("default",),
    "nethack": ("challenge",),
    "minihack": tuple(MINIHACK_IDS),
}


def resolve_task(name: str, task: str | None = None) -> str:
    """The task `make_env(name, task)` would play (None: the env's first); raises UserError
    naming the valid choices, without loading any game."""
    if name not in TASKS:
        raise UserError(f"unknown env {name!r}: choose one of {', '.join(ENVS)}")
    tasks = TASKS[name]
    if task is not None and task not in tasks:
        raise UserError(f"unknown task {task!r} for {name}: choose one of {', '.join(tasks)}")
    return tasks[0] if task is None else task


def make_env(name: str, task: str | None = None, observation: str = "automem") -> TextEnv:
    """A fresh env; `task` None means the env's first (default) task; `observation` the text
    format it renders (automem's own, or balrog: what BALROG's language wrappers show)."""
    task = resolve_task(name, task)
    check_format(observation)
    if name == "crafter":
        from automem.engine.envs.crafter_env import CrafterEnv

        return CrafterEnv(task, observation)
    if name == "nethack":
        from automem.engine.envs.nethack_env import NetHackEnv

        return NetHackEnv(task, observation)
    from automem.engine.envs.minihack_env import MiniHackEnv

    return MiniHackEnv(task, observation)


__all__ = ["ENVS", "MINIHACK_IDS", "TASKS", "StepResult", "TextEnv", "make_env", "resolve_task"]
