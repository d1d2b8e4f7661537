"""The game registry: names, tasks and `make_env`.

Importing this package is cheap: the game packages (crafter, nle, minihack) load only when
an env of theirs is made.

May import: schemas only; crafter, nle and minihack inside the functions that need them.
"""

from __future__ import annotations

from automem.engine.envs.registry import (
    ENVS,
    GAMES,
    MINIHACK_IDS,
    TASKS,
    StepResult,
    TextEnv,
    make_env,
    resolve_task,
)

__all__ = ['ENVS', 'GAMES', 'MINIHACK_IDS', 'StepResult', 'TASKS', 'TextEnv', 'make_env', 'resolve_task']
