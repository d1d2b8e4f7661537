"""Crafter's text as BALROG renders it (balrog/environments/crafter/env.py, `describe_frame`
with BALROG's defaults: unique_items, no precise locations, nothing skipped).

Long-term context (kept in a baseline's history): a status line when asleep or dead, the
nearest thing of each kind in the 9x7 view ("tree 2 steps to your north-west", in the
order a column-by-column scan first meets them) and what the player faces. Short-term
context (shown with the current observation only): vitals and inventory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

VITALS = ("health", "food", "drink", "energy")
CENTER = (4, 3)  # the player's cell in the 9 (x) by 7 (y) window


def item_names(world: Any, objects: dict) -> list[str]:
    """Semantic id -> name: materials by id (0 is "None"), then the object classes, lower case."""
    names = [""] * (len(world._mat_ids) + len(objects))
    for name, i in world._mat_ids.items():
        names[i] = str(name)
    for cls, i in objects.items():
        names[i] = cls.__name__.lower()
    return names


def _loc(dx: int, dy: int) -> str:
    parts = ["north"] if dy < 0 else ["south"] if dy > 0 else []
    parts += ["west"] if dx < 0 else ["east"] if dx > 0 else []
    distance = abs(dx) + abs(dy)
    return f"{distance} step{'s' if distance > 1 else ''} to your {'-'.join(parts)}"


def _env_text(semantic: np.ndarray, pos: tuple[int, int], facing: tuple[int, int], names: list[str],
              player_id: int) -> str:
    px, py = pos
    view = semantic[px - 4 : px + 5, py - 3 : py + 4]  # BALROG's slice, wrap-around of a negative start included
    width, height = view.shape
    tx, ty = CENTER[0] + facing[0], CENTER[1] + facing[1]
    front = names[view[tx, ty]] if 0 <= tx < width and 0 <= ty < height else "nothing"
    nearest: dict[str, tuple[int, str]] = {}
    for i in range(width):
        for j in range(height):
            item = int(view[i, j])
            if item == player_id:
                continue
            dx, dy = i - CENTER[0], j - CENTER[1]
            name, distance = names[item], abs(dx) + abs(dy)
            if name not in nearest or distance < nearest[name][0]:
                nearest[name] = (distance, _loc(dx, dy))
    seen = ("You see:\n" + "\n".join(f"- {name} {loc}" for name, (_, loc) in nearest.items())
            if nearest else "You see nothing away from you.")
    return f"{seen}\n\nYou face {front} at your front."


def contexts(env: Any, semantic: np.ndarray, names: list[str], player_id: int) -> tuple[str, str]:
    """(long-term, short-term) text of crafter env `env` whose full semantic map is `semantic`."""
    player = env._player
    inventory = player.inventory
    status = "Your status:\n" + "\n".join(f"- {v}: {inventory[v]}/9" for v in VITALS)
    items = "\n".join(f"- {k}: {n}" for k, n in inventory.items() if k not in VITALS and n != 0)
    short = status + "\n\n" + (f"Your inventory:\n{items}" if items else "You have nothing in your inventory.")
    if player.sleeping:
        state = "You are sleeping, and will not be able take actions until energy is full.\n\n"
    elif player.health <= 0:
        state = "You died.\n\n"
    else:
        state = ""
    pos = (int(player.pos[0]), int(player.pos[1]))
    facing = (int(player.facing[0]), int(player.facing[1]))
    try:
        long = (state + "\n\n" + _env_text(semantic, pos, facing, names, player_id) + "\n\n").strip()
    except IndexError:  # BALROG's own answer to a view it cannot read
        long = "Error, you are out of the map."
    return long, short.strip()
