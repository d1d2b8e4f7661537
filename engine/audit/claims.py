"""Claims in memory text, checked against the env facts recorded in step events. Pure.

A memory line can state something checkable about the world: how many of an item the
agent has, its vitals, what lies where relative to it ("tree 2 north, 1 east"), an
achievement reached ("made wood pickaxe"), the dungeon or experience level. Each claim
is checked against the facts of one step: the step the line names ("step 12: ...") or
else the moment it was written. Lines with nothing checkable are not judged.
"""

from __future__ import annotations

import re

import msgspec

from automem.engine.envs.common import offset_of
from automem.engine.envs.crafter_env import TERRAIN, VIEW
from automem.schemas.events import EnvFacts


class Claim(msgspec.Struct, frozen=True):
    """One checkable statement: `subject` is what it is about, `value` what it says."""

    kind: str  # count | vital | place | achievement | depth | level
    subject: str
    value: str
    text: str  # the line it came from
    step: int | None = None  # the step the line dates itself to, if it does


class Verdict(msgspec.Struct, frozen=True):
    claim: Claim
    holds: bool | None  # None: the facts of that step cannot tell
    truth: str  # what the facts say


ITEMS = ("wood", "stone", "coal", "iron", "diamond", "sapling", "wood pickaxe", "stone pickaxe", "iron pickaxe",
         "wood sword", "stone sword", "iron sword")
VITALS = ("health", "food", "drink", "energy", "hp")
VERBS = {"made": "make", "crafted": "make", "built": "make", "placed": "place", "collected": "collect",
         "ate": "eat", "defeated": "defeat", "killed": "defeat", "drank": "collect"}
THINGS = tuple(sorted(set(TERRAIN) - {"grass"}, key=len, reverse=True))

_ITEM = "|".join(sorted((re.escape(i).replace(r"\ ", "[ _]") for i in ITEMS), key=len, reverse=True))
_NUM = r"(\d{1,4}|no|zero|one|two|three|four|five|six|seven|eight|nine)"
_WORDS = {"no": 0, "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9}
_STEP = re.compile(r"^\s*\[?\s*step\s+(\d{1,7})\b", re.I)
_HAVE = re.compile(rf"\b(?:have|has|holding|carrying|carry|inventory:?[^.;]*?)\s+{_NUM}\s+({_ITEM})s?\b", re.I)
_ITEM_COUNT = re.compile(rf"\b({_ITEM})s?\s*(?:[:=]|x)\s*(\d{{1,4}})\b", re.I)
_INVENTORY = re.compile(r"\binventory\b", re.I)
_ITEM_THEN_COUNT = re.compile(rf"\b({_ITEM})s?\s+(\d{{1,4}})\b", re.I)
_VITAL = re.compile(r"\b(health|food|drink|energy|hp)\s*(?:[:=]|is|at)?\s*(\d{1,4})\b(?!\s*(?:->|steps?\b|north\b|south\b|east\b|west\b))", re.I)
_PLACE = re.compile(
    rf"\b({'|'.join(THINGS)})s?\s*(?:is\s+|are\s+|at\s+|:\s*)?((?:\d{{1,3}}\s+(?:north|south|east|west)"
    rf"(?:\s*,?\s*(?:and\s+)?\d{{1,3}}\s+(?:north|south|east|west))?))\b", re.I)
_DONE = re.compile(rf"\b({'|'.join(VERBS)})\s+(?:a |an |the |some |\d+ )?([a-z]+(?:[ _][a-z]+)?)", re.I)
_DEPTH = re.compile(r"\b(?:dlvl|depth|dungeon level)\s*[:=]?\s*(\d{1,3})\b", re.I)
_XL = re.compile(r"\b(?:xl|xp level|exp(?:erience)? level)\s*[:=]?\s*(\d{1,3})\b", re.I)
# Rules, recipes, plans and conditions state no fact about the moment they were written.
_NOT_A_FACT = re.compile(r"\b(not|never|no longer|when|whenever|if|unless|until|need|needs|required?|requires|cost|"
                         r"costs|must|goal|recipe|below|less|more than|at least|want|plan|todo|next|should|to make|"
                         r"to place|try)\b", re.I)
_ACHIEVEMENTS = {
    "make": ("wood_pickaxe", "stone_pickaxe", "iron_pickaxe", "wood_sword", "stone_sword", "iron_sword"),
    "place": ("table", "furnace", "stone", "plant"), "collect": ("wood", "stone", "coal", "iron", "diamond", "drink", "sapling"),
    "eat": ("cow", "plant"), "defeat": ("zombie", "skeleton"),
}


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _WORDS[word.lower()]


def extract(text: str) -> list[Claim]:
    """Every checkable claim in `text`, line by line, in order; lines that state rules or plans have none."""
    claims: list[Claim] = []
    for line in text.splitlines():
        if _NOT_A_FACT.search(line):
            continue
        dated = _STEP.match(line)
        step = int(dated.group(1)) if dated else None
        body = line[dated.end():] if dated else line
        found: list[Claim] = []
        found += [Claim("count", m.group(2).lower().replace("_", " "), str(_count(m.group(1))), line, step)
                  for m in _HAVE.finditer(body)]
        found += [Claim("count", m.group(1).lower().replace("_", " "), m.group(2), line, step)
                  for m in _ITEM_COUNT.finditer(body)]
        if _INVENTORY.search(body):
            found += [Claim("count", m.group(1).lower().replace("_", " "), m.group(2), line, step)
                      for m in _ITEM_THEN_COUNT.finditer(body)]
        found += [Claim("vital", m.group(1).lower(), m.group(2), line, step) for m in _VITAL.finditer(body)]
        found += [Claim("place", m.group(1).lower(), m.group(2).lower(), line, step) for m in _PLACE.finditer(body)]
        found += [Claim("depth", "depth", m.group(1), line, step) for m in _DEPTH.finditer(body)]
        found += [Claim("level", "level", m.group(1), line, step) for m in _XL.finditer(body)]
        for m in _DONE.finditer(body):
            verb, obj = VERBS[m.group(1).lower()], m.group(2).lower().replace(" ", "_")
            if obj in _ACHIEVEMENTS[verb]:
                found.append(Claim("achievement", f"{verb}_{obj}", "done", line, step))
        claims += list(dict.fromkeys(found))  # one claim per statement, first wording wins
    return claims


def _have(facts: EnvFacts, item: str) -> int:
    key = item.replace(" ", "_")
    if key in facts.inventory:
        return facts.inventory[key]
    words = re.compile(rf"\b{re.escape(item)}s?\b", re.I)  # NetHack keys: "d - 2 uncursed food rations"
    return sum(n for name, n in facts.inventory.items() if "-" in name and words.search(name))


def check(claim: Claim, facts: EnvFacts) -> Verdict:
    """Does `claim` hold in the world `facts` describe? None when they cannot tell."""
    if claim.kind == "count":
        have = _have(facts, claim.subject)
        return Verdict(claim, have == int(claim.value), f"{claim.subject}: {have}")
    if claim.kind == "vital":
        if claim.subject in ("health", "hp"):
            actual = None if facts.health is None else int(facts.health)
        else:
            raw = facts.extra.get(claim.subject)
            actual = int(raw) if raw is not None and raw.isdigit() else None
        if actual is None:
            return Verdict(claim, None, f"{claim.subject} not recorded")
        return Verdict(claim, actual == int(claim.value), f"{claim.subject}: {actual}")
    if claim.kind == "place":
        if not facts.view:
            return Verdict(claim, None, "no terrain recorded")
        dx, dy = offset_of(claim.value) or (0, 0)
        row, col = VIEW[1] // 2 + dy, VIEW[0] // 2 + dx
        if not (0 <= row < len(facts.view) and 0 <= col < len(facts.view[row])):
            return Verdict(claim, None, "outside the view")
        char = facts.view[row][col]
        there = next((name for name, c in TERRAIN.items() if c == char), "beyond the world")
        return Verdict(claim, there == claim.subject, f"{claim.value}: {there}")
    if claim.kind == "achievement":
        done = claim.subject in facts.achievements
        return Verdict(claim, done, f"{claim.subject} {'unlocked' if done else 'not unlocked'}")
    recorded = facts.depth if claim.kind == "depth" else facts.level
    if recorded is None:
        return Verdict(claim, None, f"{claim.kind} not recorded")
    return Verdict(claim, recorded == int(claim.value), f"{claim.kind}: {recorded}")
