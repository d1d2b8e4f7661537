"""BALROG's instruction prompts and action rules for the baseline agents, as data.

The texts are BALROG's (balrog/environments/{crafter,minihack,nle}/__init__.py at af7d1f1),
so a `history` episode sees what BALROG's naive agent sees. MiniHack's prompt lists the
task's own action set, as BALROG's MiniHack tasks define it; the agent accepts exactly
those actions, as BALROG's `check_action_validity` does.
"""

from __future__ import annotations

import re

CRAFTER = {
    "Noop": "do nothing",
    "Move West": "move west on flat ground",
    "Move East": "move east on flat ground",
    "Move North": "move north on flat ground",
    "Move South": "move south on flat ground",
    "Do": "Multiuse action to collect material, drink from lake and hit creature in front",
    "Sleep": "sleep when energy level is below maximum",
    "Place Stone": "place a stone in front",
    "Place Table": "place a table",
    "Place Furnace": "place a furnace",
    "Place Plant": "place a plant",
    "Make Wood Pickaxe": "craft a wood pickaxe with a nearby table and wood in inventory",
    "Make Stone Pickaxe": "craft a stone pickaxe with a nearby table, wood, and stone in inventory",
    "Make Iron Pickaxe": "craft an iron pickaxe with a nearby table and furnace, wood, coal, and iron in inventory",
    "Make Wood Sword": "craft a wood sword with a nearby table and wood in inventory",
    "Make Stone Sword": "craft a stone sword with a nearby table, wood, and stone in inventory",
    "Make Iron Sword": "craft an iron sword with a nearby table and furnace, wood, coal, and iron in inventory",
}
CRAFTER_ACHIEVEMENTS = (
    "Collect Wood", "Place Table", "Eat Cow", "Collect Sapling", "Collect Drink", "Make Wood Pickaxe",
    "Make Wood Sword", "Place Plant", "Defeat Zombie", "Collect Stone", "Place Stone", "Eat Plant",
    "Defeat Skeleton", "Make Stone Pickaxe", "Make Stone Sword", "Wake Up", "Place Furnace", "Collect Coal",
    "Collect Iron", "Make Iron Pickaxe", "Make Iron Sword", "Collect Diamond",
)  # fmt: skip

_DIRECTIONS = ("north", "east", "south", "west", "northeast", "southeast", "southwest", "northwest")
_MOVES = {d: f"move {d}" for d in _DIRECTIONS} | {f"far {d}": f"move far {d}" for d in _DIRECTIONS}
MINIHACK = _MOVES | {
    "up": "go up the stairs", "down": "go down the stairs", "wait": "rest one move while doing nothing",
    "more": "display more of the message", "apply": "apply (use) a tool", "close": "close an adjacent door",
    "open": "open an adjacent door", "eat": "eat something", "force": "force a lock",
    "kick": "kick an enemy or a locked door or chest", "loot": "loot a box on the floor",
    "pickup": "pick up things at the current location if there are any", "pray": "pray to the gods for help",
    "puton": "put on an accessory", "quaff": "quaff (drink) something",
    "search": "search for hidden doors and passages", "zap": "zap a wand",
}  # fmt: skip
# Each MiniHack task's action set in BALROG (its balrog-ai/minihack task classes), in env order.
_QUEST = (*_MOVES, "down", "wait", "more", "apply", "close", "eat", "force", "kick", "loot", "open", "pickup",
          "pray", "puton", "quaff", "search", "zap")
MINIHACK_ACTIONS: dict[str, tuple[str, ...]] = {
    "corridor-r3": (*_DIRECTIONS, "open", "kick", "search"),
    "mazewalk-9x9": _DIRECTIONS, "mazewalk-15x15": _DIRECTIONS, "corridorbattle-dark": _DIRECTIONS,
    "quest-easy": _QUEST, "quest-medium": _QUEST,
    # stand-ins for BALROG's Boxoban tasks (which take north, east, south, west): their own goals need all 8
    "river": _DIRECTIONS, "room-ultimate-15x15": _DIRECTIONS,
}  # fmt: skip
_MINIHACK_GOALS = (
    ("corridor", "Your goal is to explore the level and reach the stairs down"),
    ("quest", "Your goal is to explore the level, fight monsters, and navigate rooms and mazes to ultimately reach "
              "the stairs down."),
)
NETHACK = _MOVES | {
    "up": "go up a staircase",
    "down": "go down a staircase (tip: you can only go down if you are standing on the stairs)",
    "wait": "rest one move while doing nothing",
    "more": "display more of the message (tip: ONLY ever use when current message ends with --More--)",
    "annotate": "leave a note about the level", "apply": "apply (use) a tool",
    "call": "name a monster or object, or add an annotation", "cast": "cast a spell",
    "close": "close an adjacent door", "open": "open an adjacent door", "dip": "dip an object into something",
    "drop": "drop an item", "droptype": "drop specific item types (specify in the next prompt)",
    "eat": "eat something (tip: replenish food when hungry)", "esc": "exit menu or message",
    "engrave": "engrave writing on the floor (tip: Elbereth)", "enhance": "advance or check weapons skills",
    "fire": "fire ammunition from quiver", "fight": "fight a monster (even if you only guess one is there)",
    "force": "force a lock", "inventory": "show your inventory", "invoke": "invoke ",
    "jump": "jump to a location", "kick": "kick an enemy or a locked door or chest",
    "look": "look at what is under you", "loot": "loot a box on the floor",
    "monster": "use a monster's special ability (when polymorphed)",
    "offer": "offer a sacrifice to the gods (tip: on an aligned altar)",
    "overview": "display an overview of the dungeon", "pay": "pay your shopping bill",
    "pickup": "pick up things at the current location", "pray": "pray to the gods for help",
    "puton": "put on an accessory", "quaff": "quaff (drink) something", "quiver": "select ammunition for quiver",
    "read": "read a scroll or spellbook", "remove": "remove an accessory", "rub": "rub a lamp or a stone",
    "search": "search for hidden doors and passages", "swap": "swap wielded and secondary weapons",
    "takeoff": "take off one piece of armor", "takeoffall": "take off all armor",
    "teleport": "teleport to another level (if you have the ability)",
    "throw": "throw something (e.g. a dagger or dart)",
    "travel": "travel to a specific location on the map (tip: in the next action, specify > or < for stairs, { "
              "for fountain, and _ for altar)",
    "twoweapon": "toggle two-weapon combat", "untrap": "untrap something", "wear": "wear a piece of armor",
    "wield": "wield a weapon", "wipe": "wipe off your face", "zap": "zap a wand",
    "minus": "-", "space": " ", "apos": "'", **{str(i): str(i) for i in range(10)},
}  # fmt: skip
NETHACK_TIPS = """Tips:
- When the message asks for a completion, such as: "What do you want to eat? [d or ?*]", you should respond with a single character corresponding to the item you want to eat/use.
    - For example, "What do you want to eat? [dgh or ?*]" -> Possible answers are "d", "g", or "h" to eat the associated food.
- When the message asks for a direction, such as: "In what direction?" you should respond with a direction.
- When the message has --More-- at the end, your next action should be "more" to see the rest of the message.
- Explore the environment to find the stairs down to the next level.
- Always carefully read the last message to understand the current state of the game and decide your next action accordingly.
- If you keep moving in the same direction, you will eventually hit a wall and stop moving. Your message might be: "It's solid stone", or "It's a wall". Change your action to move in another direction to continue exploring the environment.
- Read the language observation carefully and look at ascii map or image observation provided to decide the next action to take and where to move next.
- You can attack monsters by moving into them."""  # noqa: E501
# What BALROG's naive agent appends to the last user message.
NAIVE = ("You always have to output one of the above actions at a time and no other text. You always have to output "
         "an action until the episode terminates.")
# The action BALROG executes when the answer names no valid one (env_wrapper.check_action_validity).
DEFAULT_ACTION = {"crafter": "Noop", "minihack": "north", "nethack": "esc"}
_HISTORY_INTRO = "In a moment I will present a history of actions and observations from the game."


def _listing(described: dict[str, str], names: tuple[str, ...] | list[str]) -> str:
    return ",\n".join(f"{name}: {described[name]}" for name in names)


def instruction(env: str, task: str) -> str:
    """BALROG's instruction prompt for the env and task (sent as the first user message)."""
    if env == "crafter":
        achievements = "\n".join(f"{i}. {a}" for i, a in enumerate(CRAFTER_ACHIEVEMENTS, 1))
        return (f"You are an agent playing Crafter. The following are the only valid actions you can take in the "
                f"game, followed by a short description of each action:\n\n{_listing(CRAFTER, list(CRAFTER))}.\n\n"
                f"These are the game achievements you can get:\n{achievements}\n\n{_HISTORY_INTRO}\n"
                "Your goal is to get as far as possible by completing all the achievements.\n\nPLAY!")
    if env == "minihack":
        goal = next((text for key, text in _MINIHACK_GOALS if key in task),
                    "Your goal is to get as far as possible in the game.")
        return (f"You are an agent playing MiniHack. The following are the possible actions you can take in the game, "
                f"followed by a short description of each action:\n\n{_listing(MINIHACK, MINIHACK_ACTIONS[task])}.\n\n"
                f"{_HISTORY_INTRO}\n\nTip: there is no point in outputting the same action over and over if nothing "
                f"changes.\n\n{goal}\n\nPLAY!")
    return (f"You are an agent playing NetHack. The following are the possible actions you can take in the game, "
            f"followed by a short description of each action:\n\n{_listing(NETHACK, list(NETHACK))}.\n\n"
            f"{NETHACK_TIPS}\n\n{_HISTORY_INTRO}\nYour goal is to get as far as possible in the game.\n\nPLAY!")


def allowed(env: str, task: str, valid: list[str]) -> frozenset[str]:
    """The actions a baseline answer may name: the task's BALROG action set where it has one,
    else every action the env takes."""
    if env == "minihack":
        return frozenset(a for a in MINIHACK_ACTIONS[task] if a in valid)
    return frozenset(valid)


_NOT_LETTERS = re.compile(r"[^a-zA-Z\s:]")


def answer_action(text: str) -> str:
    """What BALROG reads from an answer: stripped, everything but letters, whitespace and
    colons removed (so digits go too). Valid only when it is exactly an allowed action."""
    return _NOT_LETTERS.sub("", text.strip())
