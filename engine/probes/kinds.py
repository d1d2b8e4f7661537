"""Memory probes: questions about an episode's past, generated from its recorded env facts.

A probe asked at step t has its answer in the facts of an earlier step and *not* in the
observation at t (that question would test reading, not memory). Every kind is a template
(data, like the structure's vocabulary) and a generator over the steps up to t; which
candidate is asked follows from (episode, t, kind, probe seed) alone, so a probe set is the
same every time it is derived. Pure: no I/O.
"""

from __future__ import annotations

import random
import re
from typing import Callable, Sequence

import msgspec

from automem.engine.envs.common import derive_seed, offset_of, offset_phrase
from automem.schemas.events import StepTaken


class Kind(msgspec.Struct, frozen=True):
    """A probe kind: its question template, the answer's type (how it is checked), its games."""

    template: str
    answer: str  # number | offset | text | list
    games: tuple[str, ...]


NLE = ("nethack", "minihack")
KINDS: dict[str, Kind] = {
    "inventory_count": Kind("How many {item} did you have right after step {about}? Answer with a number.",
                            "number", ("crafter",)),
    # Crafter only: NetHack's screen keeps every square seen on the level, so a landmark seen
    # there is still on the map (the observation's "Nearby" list) unless something stands on it
    "nearest_seen": Kind("Where is the nearest {thing} you have seen, relative to where you stand now? "
                         "Answer like '3 north, 2 east'.", "offset", ("crafter",)),
    "unlocked_at": Kind("At which step did you unlock the achievement '{achievement}'? Answer with the step number.",
                        "number", ("crafter",)),
    "last_hurt": Kind("At which step did you last lose health? Answer with the step number.", "number",
                      ("crafter", *NLE)),
    "item_in_slot": Kind("Which item was in your inventory under the letter {letter} right after step {about}?",
                         "text", NLE),
    "message_at": Kind("What did the game's message say right after step {about}?", "text", NLE),
    "level_of": Kind("On which dungeon level (depth) did you see a {thing}? Answer with the level number.", "number",
                     NLE),
    "levels_visited": Kind("Which dungeon levels (depths) have you been on, in the order you first reached them? "
                           "Answer like '1, 2, 3'.", "list", NLE),
}
# what `nearest_seen` asks about: things that stay where they are
LANDMARKS = ("water", "table", "tree", "stone", "furnace", "iron", "diamond", "coal", "lava")
# what `level_of` asks about: NetHack features that mark a level
LEVEL_MARKS = ("staircase down", "staircase up", "fountain", "altar", "sink", "throne", "grave", "ladder down",
               "ladder up")


class Probe(msgspec.Struct, frozen=True):
    """One question: asked as after `step`, answered by the facts after `about`."""

    kind: str
    step: int
    about: int
    question: str
    key: str

    @property
    def answer_type(self) -> str:
        return KINDS[self.kind].answer


def kinds_of(env: str) -> tuple[str, ...]:
    return tuple(k for k, kind in KINDS.items() if env in kind.games)


Candidate = tuple[int, dict[str, str], str]  # (about, template fields, key)
Generator = Callable[[Sequence[StepTaken], str], list[Candidate]]


def probes_at(env: str, episode: str, steps: Sequence[StepTaken], t: int, kinds: Sequence[str], seed: int) -> list[Probe]:
    """At most one probe per kind asked as after step t (`steps[t]`), from steps 0..t."""
    upto = steps[: t + 1]
    out = []
    for kind in kinds:
        candidates = sorted(GENERATORS[kind](upto, env), key=lambda c: (c[0], sorted(c[1].items()), c[2]))
        if not candidates:
            continue
        rng = random.Random(derive_seed(seed, f"probe/{episode}/{t}/{kind}"))
        about, fields, key = rng.choice(candidates)
        question = KINDS[kind].template.format(about=about, **fields)
        out.append(Probe(kind, t, about, question, key))
    return out


# ------------------------------------------------------------------ generators


def _inventory_count(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    now = steps[-1].facts.inventory
    return [(s.step, {"item": item.replace("_", " ")}, str(count))
            for s in steps[:-1] for item, count in s.facts.inventory.items() if count != now.get(item, 0)]


_SPOT = re.compile(r"^(?P<name>.+?) (?P<spot>here|\d+ (?:north|south|east|west)(?:, \d+ (?:east|west))?)$")
def _spots(step: StepTaken) -> list[tuple[str, tuple[int, int]]]:
    """The things listed near the player after `step`, at their absolute positions."""
    facts = step.facts
    if facts.position is None:
        return []
    out = []
    for entry in facts.nearby:
        m = _SPOT.match(entry)
        offset = offset_of(m["spot"]) if m else None
        if m and offset is not None:
            out.append((m["name"], (facts.position[0] + offset[0], facts.position[1] + offset[1])))
    return out


def _nearest_seen(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    here = steps[-1].facts
    if here.position is None:
        return []
    in_view = {name for name, _ in _spots(steps[-1])}
    seen: dict[str, dict[tuple[int, int], int]] = {}  # thing -> position -> last step seen
    for s in steps[:-1]:
        for name, pos in _spots(s):
            seen.setdefault(name, {})[pos] = s.step
    out = []
    for thing in LANDMARKS:
        if thing in in_view or thing not in seen:
            continue
        (x, y), about = min(seen[thing].items(), key=lambda kv: _distance(kv[0], here.position))  # type: ignore[arg-type]
        out.append((about, {"thing": thing}, offset_phrase(x - here.position[0], y - here.position[1])))
    return out


def _distance(pos: tuple[int, int], here: tuple[int, int]) -> tuple[int, int, int]:
    dx, dy = pos[0] - here[0], pos[1] - here[1]
    return abs(dx) + abs(dy), dy, dx


def _unlocked_at(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    first: dict[str, int] = {}
    for s in steps:
        for name in s.facts.achievements:
            first.setdefault(name, s.step)
    last = steps[-1].step
    return [(step, {"achievement": name.replace("_", " ")}, str(step)) for name, step in first.items() if step < last]


def _last_hurt(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    for before, s in zip(reversed(steps[:-1]), reversed(steps)):
        if before.facts.health is not None and s.facts.health is not None and s.facts.health < before.facts.health:
            return [(s.step, {}, str(s.step))] if s is not steps[-1] else []
    return []


_NOTE = re.compile(r"\s*\([^)]*\)")  # "(being worn)", "(weapon in hand)", "(0:91)": state, not the item


def _slot_items(step: StepTaken) -> dict[str, str]:
    """Inventory letter -> item, from NetHack's "d - +0 ya (in quiver)" keys, notes left out
    (an item that only changed its note is the item the observation still shows)."""
    out = {}
    for entry in step.facts.inventory:
        letter, sep, item = entry.partition(" - ")
        if sep and len(letter) == 1:
            out[letter] = _NOTE.sub("", item).strip()
    return out


def _item_in_slot(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    now = _slot_items(steps[-1])
    return [(s.step, {"letter": letter}, item)
            for s in steps[:-1] for letter, item in _slot_items(s).items() if now.get(letter) != item]


def message_of(observation: str) -> str:
    """The game's message of an NLE observation, in automem's text or BALROG's (its lines
    joined by spaces); "" when there was none."""
    first = observation.split("\n", 1)[0]
    if first.startswith("Message:"):
        text = first.removeprefix("Message:").strip()
        return "" if text == "(none)" else text
    head, found, _ = observation.partition("\n\nlanguage observation:\n")
    return " ".join(head.rpartition("message:\n")[2].split()) if found and "message:\n" in head else ""


def _message_at(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    now = steps[-1].observation
    shown = now if now.startswith("Message:") else " ".join(now.split())  # BALROG's lines compared joined
    return [(s.step, {}, text) for s in steps[:-1] if (text := message_of(s.observation)) and text not in shown]


def _level_of(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    """Features seen on one level only, asked from another (on that level the screen shows them)."""
    here = steps[-1].facts.depth
    where: dict[str, dict[int, int]] = {}  # thing -> depth -> the last step it was seen there
    for s in steps:
        if s.facts.depth is not None:
            for entry in s.facts.nearby:
                m = _SPOT.match(entry)
                if m and m["name"] in LEVEL_MARKS:
                    where.setdefault(m["name"], {})[s.facts.depth] = s.step
    return [(about, {"thing": thing}, str(depth)) for thing, depths in where.items() if len(depths) == 1
            for depth, about in depths.items() if depth != here]


def _levels_visited(steps: Sequence[StepTaken], env: str) -> list[Candidate]:
    order: list[int] = []
    about = 0
    for s in steps:
        if s.facts.depth is not None and s.facts.depth not in order:
            order.append(s.facts.depth)
            about = s.step
    # "1, d" while on d is the status line's depth after the start: ask from three levels on
    return [(about, {}, ", ".join(map(str, order)))] if len(order) > 2 else []


GENERATORS: dict[str, Generator] = {
    "inventory_count": _inventory_count, "nearest_seen": _nearest_seen, "unlocked_at": _unlocked_at,
    "last_hurt": _last_hurt, "item_in_slot": _item_in_slot, "message_at": _message_at,
    "level_of": _level_of, "levels_visited": _levels_visited,
}  # fmt: skip
