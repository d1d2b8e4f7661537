"""Crafter as a seeded text game, stepped without drawing a single pixel.

crafter's Env.step renders an RGB frame every step, which costs most of its time. The only
effect of that rendering on the game is at night, when the darkness noise draws from the
world's random generator; `_TextCrafter` draws exactly those numbers instead of painting,
so the dynamics (and every later random draw) stay identical to the original game.

One change makes the game reproducible at all: crafter picks the creature to despawn by
its position in a Python set, whose order follows memory addresses and so differs between
runs. `_TextCrafter` hands the chunk's objects over in creation order instead.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
import numpy as np

from automem.engine.envs import crafter_balrog
from automem.engine.envs.base import StepResult
from automem.engine.envs.common import ActionNames, offset_phrase
from automem.schemas.events import EnvFacts

ACTIONS = [
    "Noop", "Move West", "Move East", "Move North", "Move South", "Do", "Sleep",
    "Place Stone", "Place Table", "Place Furnace", "Place Plant",
    "Make Wood Pickaxe", "Make Stone Pickaxe", "Make Iron Pickaxe",
    "Make Wood Sword", "Make Stone Sword", "Make Iron Sword",
]  # fmt: skip
# crafter's own names, in its action-index order (crafter/data.yaml)
_INTERNAL = [
    "noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep",
    "place_stone", "place_table", "place_furnace", "place_plant",
    "make_wood_pickaxe", "make_stone_pickaxe", "make_iron_pickaxe",
    "make_wood_sword", "make_stone_sword", "make_iron_sword",
]  # fmt: skip
_NAMES = ActionNames(ACTIONS, aliases=dict(zip(_INTERNAL, ACTIONS)))
N_ACHIEVEMENTS = 22
# One character per terrain kind in `EnvFacts.view` ("?" beyond the edge of the world):
# ground truth of what was where, for audits of what the agent wrote down.
TERRAIN = {"grass": ".", "sand": "_", "tree": "T", "water": "~", "stone": "#", "path": ":", "coal": "c",
           "iron": "i", "diamond": "d", "table": "t", "furnace": "f", "lava": "L"}
VITALS = ("health", "food", "drink", "energy")
VIEW = (9, 7)  # what the agent's image shows: 9 wide, 7 high (2 rows are the item bar)
NEAREST = 3  # entries per kind in the "around you" list
_FACING = {(-1, 0): "west", (1, 0): "east", (0, -1): "north", (0, 1): "south"}


def _make_world(seed: int):  # -> _TextCrafter; crafter is imported lazily
    import crafter

    class _TextCrafter(crafter.Env):
        """crafter.Env whose per-step observation is nothing, at the same random cost."""

        def __init__(self, seed: int) -> None:
            super().__init__(seed=seed)
            self.semantic: Any = getattr(self, "_sem_view")  # the full map with creatures on it, for BALROG's text
            self._sem_view = lambda: None  # info["semantic"]: a map copy per step nobody reads

        def _balance_chunk(self, chunk, objs):  # type: ignore[override]
            index = self._world._obj_map  # objects' slots are handed out in creation order
            super()._balance_chunk(chunk, sorted(objs, key=lambda o: int(index[tuple(o.pos)])))

        def _obs(self):  # type: ignore[override]
            if self._world.daylight < 0.5:  # LocalView._noise draws one number per pixel
                unit = self._size // self._view
                shape = tuple(self._local_view._grid * unit)
                self._world.random.uniform(32, 127, shape)
            return None

    return _TextCrafter(seed)


@functools.cache
def _terrain_chars(mat_names: tuple[tuple[int, str | None], ...]) -> np.ndarray:
    """Material id -> TERRAIN character code, for one world's material table."""
    chars = np.full(max(i for i, _ in mat_names) + 1, ord("?"), dtype=np.uint8)
    for i, name in mat_names:
        chars[i] = ord(TERRAIN.get(name or "", "?"))
    return chars


def _object_name(obj) -> str:
    name = type(obj).__name__.lower()
    if name == "plant":
        return "ripe plant" if obj.ripe else "young plant"
    return name


class CrafterEnv:
    """Crafter with a text view of the 9x7 area the image would show, plus vitals and items."""

    name = "crafter"
    fallback_action = "Noop"

    def __init__(self, task: str = "default", observation: str = "automem") -> None:
        self.task, self.observation = task, observation
        self._env = _make_world(0)
        self._contexts = ("", "")
        view = self._env.semantic  # its material and creature ids are fixed for this world: named once
        self._names = crafter_balrog.item_names(view._world, view._obj_ids)
        self._seed: int | None = None
        self._last: StepResult | None = None

    # -------------------------------------------------------------- protocol

    def reset(self, seed: int) -> tuple[str, EnvFacts]:
        env = self._env
        env._seed, env._episode = int(seed), 0  # reset() seeds the world from (seed, 1)
        env.reset()
        self._seed, self._last = int(seed), None
        return self._observe()

    def step(self, action: str) -> StepResult:
        if self._seed is None:
            raise RuntimeError("call reset(seed) before step()")
        if self._last is not None and self._last.done:  # crafter itself would play on, dead
            return msgspec.structs.replace(
                self._last, reward=0.0, action=self.fallback_action, valid=False,
                error="the episode is over; reset to play again", outcomes=(),
            )  # fmt: skip
        name = _NAMES.match(action)
        valid = name is not None
        executed = name if name is not None else self.fallback_action
        player = self._env._player
        health_before = player.health
        unlocked_before = set(self._env._unlocked)
        _, reward, done, _ = self._env.step(ACTIONS.index(executed))
        outcomes = [("achievement", a, 1.0) for a in sorted(self._env._unlocked - unlocked_before)]
        if player.health < health_before:
            lost = float(health_before - player.health)
            outcomes.append(("damage", f"health {health_before}->{player.health}", lost))
        if player.health <= 0:
            outcomes.append(("death", self._death_cause(), 1.0))
        error = "" if valid else (
            f"unknown action {action.strip()[:40]!r}; valid actions: {', '.join(ACTIONS)}"
        )
        observation, facts = self._observe()
        self._last = StepResult(
            observation=observation, reward=float(reward), done=bool(done), action=executed,
            valid=valid, error=error, facts=facts, outcomes=tuple(outcomes),
        )
        return self._last

    def valid_actions(self) -> list[str]:
        return list(ACTIONS)

    def progression(self) -> float:
        """Achievements unlocked / 22, the Crafter paper's (and BALROG's) progression."""
        return len(self._env._unlocked or ()) / N_ACHIEVEMENTS

    def contexts(self) -> tuple[str, str]:
        """The current observation as BALROG splits it: long-term (kept in a history) and
        short-term (shown with the current step only); automem's text is all long-term."""
        return self._contexts

    def close(self) -> None:
        self._seed = None

    # -------------------------------------------------------------- views

    def _facing(self) -> tuple[str, str]:
        player = self._env._player
        fx, fy = (int(v) for v in player.facing)
        material, obj = self._env._world[(player.pos[0] + fx, player.pos[1] + fy)]
        what = _object_name(obj) if obj is not None else (material or "the edge of the world")
        return _FACING[(fx, fy)], what

    def _nearby(self) -> list[tuple[str, list[str]]]:
        """Kinds in view (grass excepted), nearest first, each with its nearest few offsets."""
        world, player = self._env._world, self._env._player
        px, py = (int(v) for v in player.pos)
        (width, height), hw, hh = world.area, VIEW[0] // 2, VIEW[1] // 2
        x0, y0 = max(px - hw, 0), max(py - hh, 0)
        mats = world._mat_map[x0 : px + hw + 1, y0 : py + hh + 1]
        found: dict[str, list[tuple[int, int]]] = {}
        for mat_id in np.unique(mats).tolist():
            name = world._mat_names[mat_id]
            if name not in (None, "grass"):
                xs, ys = np.nonzero(mats == mat_id)
                found[name] = [(x + x0 - px, y + y0 - py) for x, y in zip(xs.tolist(), ys.tolist())]
        for obj in world.objects:
            dx, dy = int(obj.pos[0]) - px, int(obj.pos[1]) - py
            if obj is not player and abs(dx) <= hw and abs(dy) <= hh:
                found.setdefault(_object_name(obj), []).append((dx, dy))
        edges = [spot for spot, beyond in (
            ((-(px + 1), 0), px - hw < 0), ((width - px, 0), px + hw >= width),
            ((0, -(py + 1)), py - hh < 0), ((0, height - py), py + hh >= height),
        ) if beyond]  # fmt: skip
        if edges:
            found["edge of the world"] = edges
        kinds = []
        for name, spots in found.items():
            spots.sort(key=lambda s: (abs(s[0]) + abs(s[1]), s[1], s[0]))
            nearest = abs(spots[0][0]) + abs(spots[0][1])
            kinds.append((nearest, name, [offset_phrase(x, y) for x, y in spots[:NEAREST]]))
        kinds.sort()
        return [(name, spots) for _, name, spots in kinds]

    def _view(self) -> tuple[str, ...]:
        """The VIEW-sized terrain window centred on the player, as TERRAIN characters."""
        world, player = self._env._world, self._env._player
        px, py = (int(v) for v in player.pos)
        (width, height), hw, hh = world.area, VIEW[0] // 2, VIEW[1] // 2
        chars = _terrain_chars(tuple(world._mat_names.items()))
        window = np.full((VIEW[0], VIEW[1]), ord("?"), dtype=np.uint8)
        x0, y0 = max(px - hw, 0), max(py - hh, 0)
        x1, y1 = min(px + hw + 1, width), min(py + hh + 1, height)
        window[x0 - px + hw : x1 - px + hw, y0 - py + hh : y1 - py + hh] = chars[world._mat_map[x0:x1, y0:y1]]
        rows = window.T.tobytes().decode("ascii")
        return tuple(rows[i : i + VIEW[0]] for i in range(0, len(rows), VIEW[0]))

    def _observe(self) -> tuple[str, EnvFacts]:
        """The text the agent reads and the facts recorded beside it, from one look at the world."""
        env, player = self._env, self._env._player
        inv = player.inventory
        items = {k: int(v) for k, v in sorted(inv.items()) if k not in VITALS and v > 0}
        carried = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in items.items())
        achieved = tuple(sorted(env._unlocked))
        direction, facing = self._facing()
        nearby = self._nearby()
        time = "day" if env._world.daylight >= 0.5 else "night"
        lines = [
            f"Step {env._step}, {time}.{' You are asleep.' if player.sleeping else ''}",
            ", ".join(f"{v.capitalize()} {inv[v]}/9" for v in VITALS) + ".",
            f"You face {facing} ({direction}).",
            f"Inventory: {carried or 'nothing'}.",
            f"Achievements ({len(achieved)}/{N_ACHIEVEMENTS}): {', '.join(achieved) or 'none yet'}.",
            f"Around you ({VIEW[0]}x{VIEW[1]} view; every other square is grass):",
        ]
        lines += [f"- {name}: {'; '.join(spots)}" for name, spots in nearby] or ["- nothing but grass"]
        facts = EnvFacts(
            position=(int(player.pos[0]), int(player.pos[1])),
            health=float(player.health),
            inventory=items,
            achievements=achieved,
            facing=f"{facing} ({direction})",
            nearby=tuple(f"{name} {spot}" for name, spots in nearby for spot in spots),
            view=self._view(),
            extra={
                "food": str(inv["food"]), "drink": str(inv["drink"]), "energy": str(inv["energy"]),
                "sleeping": str(bool(player.sleeping)).lower(), "step": str(env._step),
            },
        )
        if self.observation == "balrog":
            sem = env.semantic
            long, short = crafter_balrog.contexts(env, sem(), self._names, sem._obj_ids[type(player)])
            self._contexts = (long, short)
            return f"{short}\n{long}", facts
        self._contexts = ("\n".join(lines), "")
        return self._contexts[0], facts

    def _death_cause(self) -> str:
        world, player = self._env._world, self._env._player
        if world[player.pos][0] == "lava":
            return "walked into lava"
        empty = [v for v in ("food", "drink", "energy") if player.inventory[v] <= 0]
        return f"health reached 0{' with no ' + ', '.join(empty) if empty else ''}"

