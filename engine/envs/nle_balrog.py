"""NetHack and MiniHack text as BALROG renders it, for `--observation balrog`.

BALROG describes NLE states with `nle.nle_language_obsv`, C++ compiled into its NLE fork
(balrog-ai/nle, win/rl/language_wrapper/main.cpp, the algorithm of ngoodger's
nle-language-wrapper), assembled by its `render_hybrid` (balrog/environments/nle/base.py,
the default for text models). That wheel pins an NLE that clashes with nle 1.3.0, so this is
the same rendering in Python, quirks kept ("alter", "lichs", the message trimming, rays that
pass closed doors): the fixture in tests/fixtures/balrog_nle holds 100 states with the
compiled wrapper's text, and SPEC.md says what each function does and why.

Long-term context (what a history keeps): the message, the language observation (every
named glyph on the screen and what rays from the hero meet, grouped by distance and
direction), the cursor and the 80-column screen below the message line. Short-term
context (shown with the current step only): the inventory.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

W, H = 79, 21  # the dungeon map's width and height
CMAP = (
    "dark area", "vertical wall", "horizontal wall", "northwest room corner",
    "northeast room corner", "southwest corner", "southeast corner", "cross wall",
    "t up wall", "t down wall", "t west wall", "t east wall", "doorway",
    "vertical open door", "horizontal open door", "vertical closed door",
    "horizontal closed door", "bars", "tree", "room floor", "dark room floor",
    "corridor floor", "lit corridor floor", "stairs up", "stairs down",
    "ladder up", "ladder down", "alter", "grave", "throne", "sink", "fountain",
    "pool", "ice", "lava", "vertical lowered drawbridge",
    "horizontal lowered drawbridge", "vertical raised drawbridge",
    "horizontal raised drawbridge", "air floor", "cloud floor", "water floor",
    "arrow trap", "dart trap", "falling rock trap", "squeaky board", "bear trap",
    "land mine", "rolling boulder trap", "sleeping gas trap", "rust trap",
    "fire trap", "pit", "spiked pit", "hole", "trap door", "teleportation trap",
    "level teleporter", "magic portal", "web", "statue trap", "magic trap",
    "anti magic trap", "polymorph trap", "vibrating square", "vertical beam",
    "horizontal beam", "left slant beam", "right slant beam", "dig beam",
    "flash beam", "boom left", "boom right", "shield 1", "shield 2", "shield 3",
    "shield 4", "poison cloud", "valid position", "swallow top left",
    "swallow top center", "swallow top right", "swallow middle left",
    "swallow middle right", "swallow bottom left", "swallow bottom center",
    "swallow bottom right", "explosion top left", "explosion top center",
    "explosion top right", "explosion middle left", "explosion middle center",
    "explosion middle right", "explosion bottom left", "explosion bottom center",
    "explosion bottom right", "MAXPCHARS",
)  # fmt: skip
FLOOR = {"room floor", "dark room floor", "corridor floor", "lit corridor floor"}
BLOCKS_VIEW = {
    "dark area", "vertical wall", "horizontal wall", "northwest room corner",
    "northeast room corner", "southwest corner", "southeast corner", "cross wall",
    "t up wall", "t down wall", "t west wall", "t east wall",
    "horizontal closed door", "vertical closed door",
    "horizontal raised drawbridge", "vertical raised drawbridge",
}  # fmt: skip
ON_SCREEN = {  # map features named wherever they are on the screen; the rest only where rays reach
    "horizontal closed door", "vertical closed door", "bars", "tree", "stairs up",
    "stairs down", "ladder up", "ladder down", "alter", "grave", "throne", "sink",
    "fountain", "pool", "ice", "lava", "vertical raised drawbridge",
    "horizontal raised drawbridge",
}  # fmt: skip
SWALLOW = CMAP[79:87]
EXPLOSION = CMAP[87:96]
ZAP = ("horizontal zap beam", "vertical zap beam", "left slant zap beam", "right slant zap beam")
WARNING = tuple(f"unknown creature causing you {w}" for w in ("worry", "concern", "anxiety", "disquiet",
                                                                "alarm", "dread"))  # fmt: skip
DISTANCES = ("very far", "far", "near", "very near", "adjacent")  # the order lines are listed in
DIRECTIONS = (
    "north", "northnortheast", "northeast", "eastnortheast", "east", "eastsoutheast",
    "southeast", "southsoutheast", "south", "southsouthwest", "southwest", "westsouthwest",
    "west", "westnorthwest", "northwest", "northnorthwest",
)  # fmt: skip
RAYS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))  # screen (dx, dy), y down
RAY_LENGTH = 9
MORE = "--More--"
_BLANK = " \x1a"  # the C++ whitespace literal ends at its embedded NUL: only these two count
Entry = tuple[str, str, str]  # name, distance, direction


def _object_name(otyp: int) -> str:
    """A floor object as the wrapper names it: the unshuffled, unidentified description."""
    from nle import nethack as nh

    d = nh.objdescr.from_idx(otyp)
    name, descr = d.oc_name or "", d.oc_descr or ""
    cls = ord(nh.objclass(otyp).oc_class)
    if cls in (nh.ILLOBJ_CLASS, nh.WEAPON_CLASS, nh.COIN_CLASS, nh.ROCK_CLASS, nh.BALL_CLASS, nh.CHAIN_CLASS):
        return name
    if cls in (nh.ARMOR_CLASS, nh.TOOL_CLASS):
        return descr or name
    suffix = {nh.RING_CLASS: " ring", nh.POTION_CLASS: " potion", nh.SPBOOK_CLASS: " spellbook",
              nh.WAND_CLASS: " wand"}  # fmt: skip
    if cls in suffix:
        return descr + suffix[cls]
    if cls == nh.AMULET_CLASS:
        return descr if "Amulet" in descr else descr + " amulet"
    if cls == nh.FOOD_CLASS:
        return name + descr
    if cls == nh.SCROLL_CLASS:
        return "scroll labeled " + descr
    if cls == nh.GEM_CLASS:
        return name if descr in name else descr + " " + name
    if cls == nh.VENOM_CLASS:
        return "splash of " + name
    return ""


@functools.cache
def glyph_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(screen names, ray names) per glyph: a glyph with a screen name is listed wherever it
    is; one with only a ray name (walls, doorways, traps, dark area) where a ray meets it."""
    from nle import nethack as nh

    screen, ray = [""] * nh.MAX_GLYPH, [""] * nh.MAX_GLYPH
    monster = [nh.permonst(i).mname for i in range(nh.NUMMONS)]
    for g in range(nh.MAX_GLYPH):
        if g >= nh.GLYPH_STATUE_OFF:
            screen[g] = monster[g - nh.GLYPH_STATUE_OFF] + " statue"
        elif g >= nh.GLYPH_WARNING_OFF:
            screen[g] = WARNING[g - nh.GLYPH_WARNING_OFF]
        elif g >= nh.GLYPH_SWALLOW_OFF:
            screen[g] = SWALLOW[(g - nh.GLYPH_SWALLOW_OFF) % 8]
        elif g >= nh.GLYPH_ZAP_OFF:
            screen[g] = ZAP[(g - nh.GLYPH_ZAP_OFF) % 4]
        elif g >= nh.GLYPH_EXPLODE_OFF:
            screen[g] = EXPLOSION[(g - nh.GLYPH_EXPLODE_OFF) % 9]
        elif g >= nh.GLYPH_CMAP_OFF:
            name = CMAP[g - nh.GLYPH_CMAP_OFF]
            if name in ON_SCREEN:
                screen[g] = name
            elif name not in FLOOR:
                ray[g] = name
        elif g >= nh.GLYPH_OBJ_OFF:
            screen[g] = _object_name(g - nh.GLYPH_OBJ_OFF)
        elif g >= nh.GLYPH_RIDDEN_OFF:
            screen[g] = "ridden " + monster[g - nh.GLYPH_RIDDEN_OFF]
        elif g >= nh.GLYPH_BODY_OFF:
            screen[g] = monster[g - nh.GLYPH_BODY_OFF] + " corpse"
        elif g >= nh.GLYPH_DETECT_OFF:
            screen[g] = "detected " + monster[g - nh.GLYPH_DETECT_OFF]
        elif g >= nh.GLYPH_INVIS_OFF:
            screen[g] = "invisible creature"
        elif g >= nh.GLYPH_PET_OFF:
            screen[g] = "tame " + monster[g - nh.GLYPH_PET_OFF]
        else:
            screen[g] = monster[g]
    return tuple(screen), tuple(ray)


@functools.cache
def _named() -> np.ndarray:
    """glyph -> whether it has a screen name, for the vectorised screen pass."""
    return np.array([bool(name) for name in glyph_names()[0]])


@functools.cache
def plural(noun: str) -> str:
    """The wrapper's plural, its oddities kept: a "ch" gets an s ("lichs"), mass nouns stay."""
    if noun.endswith(("boots", "shoes", "scales", "lenses", "bars")):
        return noun
    special = {"can of grease": "cans of grease", "Master of Thieves": "Masters of Thieves",
               "ice": "area of ice", "lava": "area of lava"}  # fmt: skip
    if noun in special:
        return special[noun]
    for head, heads in (("boom ", "booms "), ("shield ", "shields "), ("swallow ", "swallows "),
                        ("scroll ", "scrolls "), ("worthless piece ", "worthless pieces "),
                        ("unknown creature ", "unknown creatures ")):  # fmt: skip
        if noun.startswith(head):
            return heads + noun[len(head) :]
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    if noun.endswith(("z", "x", "sh", "ss")):
        return noun + "es"
    if noun.endswith("ff"):
        return noun[:-2] + "ves"
    if noun.endswith("f"):
        return noun[:-1] + "ves"
    return noun + ("es" if noun.endswith("s") else "s")


def _distance(offset: int) -> str:
    if offset == 1:
        return "adjacent"
    if offset == 2:
        return "very near"
    if 2 < offset < 6:
        return "near"
    return "far" if 5 < offset < 20 else "very far"


def where(x: int, y: int) -> tuple[str, str]:
    """(distance, direction) of an offset, x east and y north: straight part, then diagonal."""
    diag = min(abs(x), abs(y))
    diagonal = ""
    if diag:
        diagonal = ("south" if y < 0 else "north") + ("west" if x < 0 else "east")
    straight_y = y - diag if y > 0 else y + diag
    straight_x = x - diag if x > 0 else x + diag
    dy = "south" if straight_y < 0 else "north" if straight_y > 0 else ""
    dx = "west" if straight_x < 0 else "east" if straight_x > 0 else ""
    return _distance(max(abs(x), abs(y))), dy + dx + diagonal


def _and(words: list[str]) -> str:
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + ", and " + words[-1]


def _entries(glyphs: np.ndarray, px: int, py: int) -> list[Entry]:
    """The screen pass (row by row, the hero's cell skipped), then the eight rays."""
    screen, ray = glyph_names()
    g = np.asarray(glyphs).reshape(-1)
    entries: list[Entry] = []
    for i in np.flatnonzero(_named()[g]).tolist():
        x, y = i % W - px, py - i // W
        if x or y:
            entries.append((screen[g[i]], *where(x, y)))
    for dx, dy in RAYS:
        for step in range(1, RAY_LENGTH + 1):
            x, y = px + dx * step, py + dy * step
            if not (0 <= x < W and 0 <= y < H):
                break
            glyph = g[x + y * W]
            if ray[glyph]:  # a glyph has a ray name only if it has no screen name
                entries.append((ray[glyph], *where(x - px, py - y)))
                if ray[glyph] in BLOCKS_VIEW:
                    break
    return entries


def text_glyphs(glyphs: np.ndarray, blstats: np.ndarray) -> str:
    """The language observation: a line per (name, distance), farthest first, the directions
    clockwise from north; a name seen more than once in one direction becomes plural."""
    entries = _entries(glyphs, int(blstats[0]), int(blstats[1]))
    entries.sort(key=lambda e: (DISTANCES.index(e[1]), DIRECTIONS.index(e[2])))
    groups: dict[tuple[str, str], list[str]] = {}
    for name, distance, direction in entries:
        groups.setdefault((name, distance), []).append(direction)
    keys: list[tuple[str, str]] = []
    lines: dict[tuple[str, str], list[str]] = {}
    for (name, distance), directions in groups.items():
        once = [d for d in dict.fromkeys(directions) if directions.count(d) == 1]
        more = [d for d in dict.fromkeys(directions) if directions.count(d) > 1]
        if once:
            keys.append((name, distance))
            lines[(name, distance)] = once
        if more:  # a mass noun's plural is its singular: the wrapper then prints the plural line twice
            key = (plural(name), distance)
            keys.append(key)
            lines[key] = more
    return "\n".join(f"{name} {distance} {_and(lines[(name, distance)])}" for name, distance in keys)


def text_cursor(glyphs: np.ndarray, blstats: np.ndarray, tty_cursor: np.ndarray) -> str:
    """What is under the terminal cursor, from the hero ("Yourself a rogue" when on it)."""
    g = np.asarray(glyphs).reshape(-1)
    px, py = int(blstats[0]), int(blstats[1])
    cx, cy = int(tty_cursor[1]), int(tty_cursor[0]) - 1
    x, y = cx - px, py - cy
    index = cx + cy * W
    if not (-W <= x < W and -H <= y < H and 0 < index < g.size):
        return ""
    name = glyph_names()[0][g[index]]
    if x == 0 and y == 0:
        return "Yourself a " + name
    distance, direction = where(x, y)
    return f"{distance} {direction} {name}"


def text_inventory(inv_strs: np.ndarray, inv_letters: np.ndarray) -> str:
    """"letter: item" lines, up to the first empty slot (an item is read as a C string)."""
    raw = np.ascontiguousarray(inv_strs, dtype=np.uint8)
    flat, width = raw.tobytes(), raw.shape[1]
    lines = []
    for i, letter in enumerate(int(v) for v in inv_letters):
        if letter == 0:
            break
        end = flat.find(b"\0", i * width)
        lines.append(chr(letter) + ": " + flat[i * width : end if end >= 0 else len(flat)].decode("latin-1"))
    return "\n".join(lines)


def _trim(row: str) -> str:
    start = next((k for k, c in enumerate(row) if c not in _BLANK), len(row))
    if start == len(row) - 1:  # the wrapper's quirk: a lone character in the last column is dropped
        return ""
    return row[start:].rstrip(_BLANK)


def _pages_on(row: str) -> bool:
    """The row ends a page: --More--, (end) or "(n of m)"."""
    p = row.find(" of ")
    if p >= 2 and p + 5 < len(row) and row[p - 2] == "(" and row[p + 5] == ")":
        return True
    return MORE in row or "(end)" in row


def text_message(tty_chars: np.ndarray) -> str:
    """The top of the terminal: the message row, or every row down to a page marker, each
    cut at the message row's indent."""
    lines = [bytes(row).decode("latin-1") for row in np.asarray(tty_chars, dtype=np.uint8)]
    indent = next((k for k, c in enumerate(lines[0]) if c != " "), None)
    first, second = _trim(lines[0]), _trim(lines[1])
    if not first and not second:
        return ""
    death = "Points" in second or "list!" in second
    out, blank = "", 0
    for r, line in enumerate(lines):
        if indent is None:  # the C++ reads from one byte before the row (a NUL before row 0)
            row = _trim((lines[r - 1][-1] if r else "\x00") + line)
        else:
            row = _trim(line[indent:])
        blank = blank + 1 if not row else 0
        out += row
        if _pages_on(row):
            return out
        if row:
            out += "\n"
        if death and blank > 1:
            return out
    return first


def auto_more(pages: Sequence[np.ndarray]) -> str:
    """The message of a step whose --More-- pages were passed (BALROG's AutoMore): each page's
    message, every --More-- before the next page turned into a newline."""
    message = text_message(pages[0])
    for tty in pages[1:]:
        message = message.replace(MORE, "\n") + text_message(tty)
    return message


def contexts(message: str, glyphs: np.ndarray, blstats: np.ndarray, tty_chars: np.ndarray,
             tty_cursor: np.ndarray, inv_strs: np.ndarray, inv_letters: np.ndarray) -> tuple[str, str]:
    """(long-term, short-term) context of one state, as BALROG's render_hybrid joins them."""
    rows = "".join(bytes(row).decode("latin-1") + "\n" for row in np.asarray(tty_chars, dtype=np.uint8))
    screen = "\n".join(rows.split("\n")[1:])  # below the message row, as BALROG cuts it
    cursor = f"{text_cursor(glyphs, blstats, tty_cursor)}\n(x={int(tty_cursor[1])}, y={int(tty_cursor[0])})"
    long = "\n".join(f"{name}:\n{text}\n" for name, text in (
        ("message", message), ("language observation", text_glyphs(glyphs, blstats)),
        ("cursor", cursor), ("map", screen)))  # fmt: skip
    return long, f"inventory:\n{text_inventory(inv_strs, inv_letters)}\n"
