"""Version 0 of the memory structure for each game: the paper's starting agent, as data.

Loop 1 revises these documents; the engine only interprets them. `small` variants keep
one LOG and one PLAN turn with short answers so the embedded 135M model finishes the
main job in minutes on a laptop CPU; `v0-small-lookup` adds a PLAN turn before the action
that searches memory (the model names the keyword), so memory can inform a small model's
decisions and write credit can flow.
"""

from __future__ import annotations

from typing import Callable

import msgspec

from automem.engine.envs import GAMES
from automem.schemas.errors import UserError
from automem.schemas.structure import Command, MemoryLimits, Structure

READ_ONLY_PHASES = ("log", "plan")

VOCABULARY: tuple[Command, ...] = (
    Command(tag="SEARCH", kind="search", params=("file", "keyword"), phases=READ_ONLY_PHASES,
            help="lines of a file containing the keyword (file * searches every file)"),
    Command(tag="READ", kind="read", params=("file",), phases=READ_ONLY_PHASES, help="the whole file"),
    Command(tag="TAIL", kind="tail", params=("file", "n"), phases=READ_ONLY_PHASES, help="the last n lines"),
    Command(tag="COUNT", kind="count", params=("file", "keyword"), phases=READ_ONLY_PHASES,
            help="how many lines contain the keyword"),
    Command(tag="LIST", kind="list", params=(), phases=READ_ONLY_PHASES, help="the files with their sizes"),
    Command(tag="APPEND", kind="append", params=("file", "line"), phases=("log",), help="add one line"),
    Command(tag="WRITE", kind="write", params=("file", "content"), phases=("log",), help="replace a file"),
    Command(tag="CREATE", kind="create", params=("file",), phases=("log",), help="a new empty file"),
    Command(tag="DONE", kind="done", params=(), phases=("log",), help="end the LOG phase"),
    Command(tag="ACTION", kind="action", params=("action",), phases=("plan",), help="commit one game action"),
)

LOG_SYSTEM = """You are the memory keeper of an agent playing {game}. Your memory is a folder of text files.
The last action and what happened are shown. Record what is worth remembering for later: where things are,
what worked, what failed, what to do next. Use commands, one or more per answer:
{commands}
Write file names exactly as listed. End with <|DONE|> when memory is up to date.
Example answer:
<|APPEND|>actions_log.txt|step 3: Move West -> reached a tree<|END|><|DONE|>"""

PLAN_SYSTEM = """You are an agent playing {game}. Your memory is a folder of text files you wrote earlier.
You may first look things up (read-only):
{commands}
Then choose exactly one game action: <|ACTION|>action name<|END|>
Valid actions: {actions}
Example answer:
<|ACTION|>{example}<|END|>"""

PLAN_LOOKUP_SYSTEM = """You are an agent playing {game}. Your memory is a folder of text files you wrote earlier.
First search memory for what matters now (read-only): <|SEARCH|>*|water<|END|> shows every line about water.
{commands}
Then choose exactly one game action: <|ACTION|>action name<|END|>
Valid actions: {actions}
Example answers:
<|SEARCH|>*|tree<|END|>
<|ACTION|>{example}<|END|>"""

CRAFTER_FILES = {
    "map_notes.txt": "# where resources and places are (x,y)\n",
    "crafting_progress.txt": "# what has been collected, placed and made\n",
    "survival_log.txt": "# health, food, drink, energy events\n",
    "actions_log.txt": "# action -> outcome\n",
    "strategy.txt": "# plan: wood -> table -> wood pickaxe -> stone -> stone pickaxe -> coal, iron -> furnace -> iron tools\n",
}

NETHACK_RULES = """# NetHack essentials
Move with north/south/east/west and diagonals (northeast, ...). 'far east' runs.
Go down stairs '>' with 'down' when standing on them. Pray when HP is very low (once every ~1000 turns).
Eat when Hungry. Search to find hidden doors when stuck. Do not attack peaceful shopkeepers.
"""

NETHACK_SYMBOLS = """# map symbols
@ you (or a human)  > stairs down  < stairs up  + door or spellbook  # corridor or tree
. floor  - | walls  { fountain  _ altar  $ gold  ) weapon  [ armour  % food  ? scroll
! potion  = ring  / wand  letters: monsters (d dog/jackal, F lichen, x grid bug)
"""

NETHACK_FILES = {
    "game_rules.txt": NETHACK_RULES,
    "nethack_symbols.txt": NETHACK_SYMBOLS,
    "dungeon_map.txt": "# levels, stairs, doors, dangers (level: note)\n",
    "inventory.txt": "# what you carry and what it is for\n",
    "actions_log.txt": "# action -> outcome\n",
    "strategy.txt": "# plan: explore, find '>' and descend; fight weak monsters; eat when hungry\n",
}



LOOKUP_PRIME = "<|SEARCH|>*|"  # the small lookup turn: search every file for a keyword the model names


def v0(env: str, small: bool = False) -> Structure:
    """The starting structure of a game; `small` is the budget variant for tiny models."""
    if env not in GAMES:
        raise UserError(f"no structure for env {env!r}: one of {', '.join(GAMES)}")
    files = CRAFTER_FILES if env == "crafter" else NETHACK_FILES
    read_only = () if env == "crafter" else ("game_rules.txt", "nethack_symbols.txt")
    return Structure(
        env=env, name="v0-small" if small else "v0",
        log_system=LOG_SYSTEM, plan_system=PLAN_SYSTEM, initial_files=files, commands=VOCABULARY,
        max_log_turns=1 if small else 10, max_plan_turns=1 if small else 5,
        max_tokens=16 if small else 200, fallback_action="Noop" if env == "crafter" else "search",
        log_prime="<|APPEND|>actions_log.txt|" if small else "", plan_prime="<|ACTION|>" if small else "",
        recent_steps=3, limits=MemoryLimits(read_only=read_only),
    )


def small_lookup(env: str) -> Structure:
    """v0-small with a lookup turn: PLAN searches memory, then names the action."""
    return msgspec.structs.replace(v0(env, small=True), name="v0-small-lookup", plan_system=PLAN_LOOKUP_SYSTEM,
                                   max_plan_turns=2, plan_lookup_prime=LOOKUP_PRIME)


SEEDS: dict[str, Callable[[str], Structure]] = {
    "v0": v0, "v0-small": lambda env: v0(env, small=True), "v0-small-lookup": small_lookup,
}  # fmt: skip


def seed(env: str, name: str) -> Structure | None:
    """The starting structure `name` of an env, or None when no seed has that name."""
    make = SEEDS.get(name)
    return make(env) if make is not None else None
