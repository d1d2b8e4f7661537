"""NetHack screens as text, shared by the NetHack and MiniHack environments.

automem's own text (BALROG's is nle_balrog), made from NLE's arrays: the message line, the dungeon map (`chars`, cropped to what has been seen), any menu or text
window drawn over it (read off `tty_chars`), the bottom line (`blstats`, fields named),
the inventory and a list of what is near the player (from `glyphs`) with directions and
distances. Everything is a pure function of one observation, so the same game state always
gives the same text; the per-step work is a handful of numpy operations.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from automem.engine.envs.common import offset_phrase

# blstats indices (nle/include/nleobs.h; the same numbers as nle.nethack.NLE_BL_*)
BL_X, BL_Y, BL_STR125, BL_DEX, BL_CON, BL_INT, BL_WIS, BL_CHA = 0, 1, 3, 4, 5, 6, 7, 8
BL_SCORE, BL_HP, BL_HPMAX, BL_DEPTH, BL_GOLD, BL_ENE, BL_ENEMAX = 9, 10, 11, 12, 13, 14, 15
BL_AC, BL_XP, BL_EXP, BL_TIME, BL_HUNGER, BL_CAP = 16, 18, 19, 20, 21, 22
BL_DNUM, BL_DLEVEL, BL_CONDITION, BL_ALIGN = 23, 24, 25, 26

HUNGER = ("Satiated", "Not hungry", "Hungry", "Weak", "Fainting", "Fainted", "Starved")
ENCUMBRANCE = ("Unencumbered", "Burdened", "Stressed", "Strained", "Overtaxed", "Overloaded")
ALIGNMENT = {-1: "Chaotic", 0: "Neutral", 1: "Lawful"}
# dungeon numbers follow the load order of NetHack's dat/dungeon.def
DUNGEONS = (
    "Dungeons of Doom", "Gehennom", "Gnomish Mines", "Quest", "Sokoban",
    "Fort Ludios", "Vlad's Tower", "Elemental Planes",
)  # fmt: skip
CONDITIONS = (  # nle BL_MASK_* bits, in the order the bottom line shows them
    (1, "Stone"), (2, "Slime"), (4, "Strangled"), (8, "Food poisoning"), (16, "Terminally ill"),
    (32, "Blind"), (64, "Deaf"), (128, "Stunned"), (256, "Confused"), (512, "Hallucinating"),
    (1024, "Levitating"), (2048, "Flying"), (4096, "Riding"),
)  # fmt: skip
NEAREST = 3  # positions listed per kind of thing
MAX_KINDS = 12  # kinds of things listed, nearest first
MORE_TEXT = "--More--"
MORE = MORE_TEXT.encode()


@dataclass(frozen=True)
class Frame:
    """The parts of one NLE observation the text is made from."""

    glyphs: np.ndarray  # (21, 79) int16
    chars: np.ndarray  # (21, 79) uint8: the map alone
    tty_chars: np.ndarray  # (24, 80) uint8: the terminal, windows included
    tty_cursor: np.ndarray  # (2,) uint8: the terminal cursor's row and column
    blstats: np.ndarray  # (27,)
    message: np.ndarray  # (256,) uint8
    inv_letters: np.ndarray  # (55,) uint8
    inv_strs: np.ndarray  # (55, 80) uint8
    internal: np.ndarray  # [1:4]: in_yn_function, in_getlin, xwaitforspace

    @classmethod
    def of(cls, arrays: dict) -> "Frame":
        """A copy: NLE overwrites its observation arrays in place on the next key."""
        return cls(**{name: arrays[name].copy() for name in cls.__dataclass_fields__})

    @property
    def misc(self) -> np.ndarray:
        """(in_yn_function, in_getlin, xwaitforspace): what kind of input the game awaits."""
        return self.internal[1:4]


# ------------------------------------------------------------------ glyph names


_CMAP_NAMES = {  # map features worth naming; walls, floor, corridors and dark stone are not
    12: "doorway", 13: "open door", 14: "open door", 15: "closed door", 16: "closed door",
    17: "iron bars", 18: "tree", 23: "staircase up", 24: "staircase down", 25: "ladder up",
    26: "ladder down", 27: "altar", 28: "grave", 29: "throne", 30: "sink", 31: "fountain",
    32: "water", 33: "ice", 34: "lava", 35: "lowered drawbridge", 36: "lowered drawbridge",
    37: "raised drawbridge", 38: "raised drawbridge", 41: "water",
}  # fmt: skip
_TRAPS = range(42, 64)  # cmap indices of the trap kinds; symdef gives their names
# classes whose items show an appearance, not their identity, until identified
_APPEARANCE = {"AMULET_CLASS": "amulet", "RING_CLASS": "ring", "POTION_CLASS": "potion",
               "SCROLL_CLASS": "scroll", "SPBOOK_CLASS": "spellbook", "WAND_CLASS": "wand",
               "GEM_CLASS": "gem"}  # fmt: skip


@functools.cache
def glyph_kinds() -> tuple[tuple[str, ...], np.ndarray]:
    """(kind names, glyph -> kind index): what a player would call each glyph, built once.
    Kind 0 is scenery (floor, walls, corridors, dark stone, effects) and is never listed."""
    from nle import nethack as nh

    names = [""] * nh.MAX_GLYPH
    monsters = [nh.permonst(i).mname for i in range(nh.NUMMONS)]
    for offset, form in (
        (nh.GLYPH_MON_OFF, "{}"), (nh.GLYPH_PET_OFF, "{} (pet)"),
        (nh.GLYPH_DETECT_OFF, "{} (detected)"), (nh.GLYPH_BODY_OFF, "{} corpse"),
        (nh.GLYPH_RIDDEN_OFF, "{} (ridden)"), (nh.GLYPH_STATUE_OFF, "statue of {}"),
    ):  # fmt: skip
        for i, monster in enumerate(monsters):
            names[offset + i] = form.format(monster)
    names[nh.GLYPH_INVIS_OFF] = "unseen monster"
    for i in range(nh.GLYPH_WARNING_OFF, nh.GLYPH_STATUE_OFF):
        names[i] = "warning of a monster"
    appearance = {getattr(nh, cls): word for cls, word in _APPEARANCE.items()}
    for i in range(nh.NUM_OBJECTS):
        descr = nh.objdescr.from_idx(i)
        word = appearance.get(ord(nh.objclass(i).oc_class))
        if word and descr.oc_descr:
            names[nh.GLYPH_OBJ_OFF + i] = f"{descr.oc_descr} {word}"
        else:
            names[nh.GLYPH_OBJ_OFF + i] = descr.oc_descr or descr.oc_name or "strange object"
    for i, name in _CMAP_NAMES.items():
        names[nh.GLYPH_CMAP_OFF + i] = name
    for i in _TRAPS:
        names[nh.GLYPH_CMAP_OFF + i] = nh.symdef.from_idx(i).explanation
    kinds = ("", *sorted({name for name in names if name}))
    index = {name: i for i, name in enumerate(kinds)}
    return kinds, np.array([index[name] for name in names], dtype=np.int32)


# ------------------------------------------------------------------ pieces


def _text(row: np.ndarray) -> str:
    return row.tobytes().split(b"\0", 1)[0].decode("latin-1").strip()


def _lines(block: np.ndarray) -> list[str]:
    """Rows of a 2-d uint8 block as right-trimmed strings."""
    width = block.shape[1]
    raw = np.ascontiguousarray(block).tobytes()
    return [raw[i : i + width].decode("latin-1").rstrip() for i in range(0, len(raw), width)]


def message(frame: Frame) -> str:
    return _text(frame.message)


def more_pending(arrays: dict) -> bool:
    """The game shows --More-- and waits for a key before it goes on (arrays: NLE's own)."""
    return bool(arrays["internal"][3]) and MORE in arrays["tty_chars"].tobytes()


def window(frame: Frame) -> list[str]:
    """A menu or text window drawn over the map, read off the terminal; [] when none."""
    tty, chars = frame.tty_chars, frame.chars
    covered = tty[1:22, :79] != chars
    if not covered.any():
        return []
    left = int(np.flatnonzero(covered.any(0))[0])
    bottom = 24 if left == 0 else int(np.flatnonzero(covered.any(1))[-1]) + 2
    lines = _lines(tty[:bottom, left:])
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def map_lines(frame: Frame) -> tuple[str, list[str]]:
    """A header naming the crop, and the level map cropped to the rows and columns with
    anything drawn (the player's square always included)."""
    chars = frame.chars
    seen = chars != 32
    x, y = int(frame.blstats[BL_X]), int(frame.blstats[BL_Y])
    seen[y, x] = True
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    (top, bottom), (left, right) = (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))
    header = f"Map (rows y={top}..{bottom}, columns x={left}..{right}; you are at x={x}, y={y}; north is up):"
    return header, _lines(chars[top : bottom + 1, left : right + 1])


def _strength(value: int) -> str:
    """blstats STR125 as the bottom line shows it: 3..18, 18/01..18/**, 19..25."""
    if value <= 18:
        return str(value)
    if value <= 117:
        return f"18/{value - 18:02d}"
    return "18/**" if value == 118 else str(value - 100)


def status(frame: Frame) -> dict[str, str]:
    """The bottom line, every field named."""
    bl = [int(v) for v in frame.blstats]
    dungeon = DUNGEONS[bl[BL_DNUM]] if 0 <= bl[BL_DNUM] < len(DUNGEONS) else f"dungeon {bl[BL_DNUM]}"
    conditions = [name for bit, name in CONDITIONS if bl[BL_CONDITION] & bit]
    return {
        "HP": f"{bl[BL_HP]}/{bl[BL_HPMAX]}",
        "Pw": f"{bl[BL_ENE]}/{bl[BL_ENEMAX]}",
        "AC": str(bl[BL_AC]),
        "XL": f"{bl[BL_XP]} (exp {bl[BL_EXP]})",
        "depth": f"{bl[BL_DEPTH]} ({dungeon} level {bl[BL_DLEVEL]})",
        "gold": str(bl[BL_GOLD]),
        "hunger": HUNGER[bl[BL_HUNGER]] if 0 <= bl[BL_HUNGER] < len(HUNGER) else str(bl[BL_HUNGER]),
        "encumbrance": ENCUMBRANCE[bl[BL_CAP]] if 0 <= bl[BL_CAP] < len(ENCUMBRANCE) else str(bl[BL_CAP]),
        "turn": str(bl[BL_TIME]),
        "score": str(bl[BL_SCORE]),
        "attributes": (
            f"St {_strength(bl[BL_STR125])} Dx {bl[BL_DEX]} Co {bl[BL_CON]} "
            f"In {bl[BL_INT]} Wi {bl[BL_WIS]} Ch {bl[BL_CHA]}"
        ),
        "alignment": ALIGNMENT.get(bl[BL_ALIGN], str(bl[BL_ALIGN])),
        "conditions": ", ".join(conditions) or "none",
    }


def inventory(frame: Frame) -> tuple[tuple[str, str], ...]:
    """(letter, description) for every carried item, in the game's order."""
    return _inventory(frame.inv_letters.tobytes(), frame.inv_strs.tobytes())


@functools.lru_cache(maxsize=4)  # the inventory rarely changes from one step to the next
def _inventory(letters: bytes, strs: bytes) -> tuple[tuple[str, str], ...]:
    width = len(strs) // len(letters)
    return tuple(
        (chr(letter), strs[i * width : (i + 1) * width].split(b"\0", 1)[0].decode("latin-1").strip())
        for i, letter in enumerate(letters) if letter
    )  # fmt: skip


def nearby(frame: Frame) -> list[tuple[str, list[str]]]:
    """Named things on the map (monsters, items, doors, stairs, traps...), nearest kinds
    first, each with the offsets of its nearest few; distance counts king moves."""
    names, kind_of = glyph_kinds()
    px, py = int(frame.blstats[BL_X]), int(frame.blstats[BL_Y])
    kinds = kind_of[frame.glyphs]
    kinds[py, px] = 0  # the player's own glyph
    ys, xs = np.nonzero(kinds)
    if not len(ys):
        return []
    dx, dy = xs - px, ys - py
    order = np.lexsort((dx, dy, np.abs(dx) + np.abs(dy), np.maximum(np.abs(dx), np.abs(dy))))
    listed: dict[int, list[str]] = {}
    for k, x, y in zip(kinds[ys, xs][order].tolist(), dx[order].tolist(), dy[order].tolist()):
        spots = listed.get(k)
        if spots is None and len(listed) < MAX_KINDS:
            spots = listed[k] = []
        if spots is not None and len(spots) < NEAREST:
            spots.append(offset_phrase(x, y))
    return [(names[k], spots) for k, spots in listed.items()]


# ------------------------------------------------------------------ the whole text


def prompt_hint(frame: Frame, menu: bool) -> str:
    """What kind of answer the game is waiting for, if any."""
    if frame.misc[0]:
        return "The game asks a question: answer with one key (an item letter, a direction, y or n), or esc."
    if frame.misc[1]:
        return "The game asks for text: type it one character per action, then more (Enter), or esc."
    if menu:
        return (
            "A menu is open: select items by letter, then more (Enter) to confirm, "
            "space for the next page, esc to close."
        )
    return ""


@dataclass(frozen=True)
class View:
    """Everything the text says about one frame, worked out once for text and facts alike."""

    window: list[str]
    hint: str
    map_header: str
    map: list[str]
    status: dict[str, str]
    inventory: tuple[tuple[str, str], ...]
    nearby: list[tuple[str, list[str]]]


def look(frame: Frame) -> View:
    shown = window(frame) if frame.misc[2] else []
    header, drawn = map_lines(frame)
    return View(
        window=shown, hint=prompt_hint(frame, bool(shown)), map_header=header, map=drawn,
        status=status(frame), inventory=inventory(frame), nearby=nearby(frame),
    )  # fmt: skip


def render(view: View | None, messages: list[str], end: str = "") -> str:
    """The observation text: messages, then (unless the game is gone) any window, the map,
    status, inventory and the things nearby."""
    said = [m for i, m in enumerate(messages) if m and (i == 0 or m != messages[i - 1])]
    lines = ["Message: " + (" ".join(said) or "(none)")]
    if end:
        lines.append(f"Game over: {end}.")
    if view is None:
        return "\n".join(lines)
    if view.hint:
        lines.append(view.hint)
    if view.window:
        lines += ["Window:", *view.window]
    lines += [view.map_header, *view.map]
    lines.append("Status: " + ", ".join(f"{k} {v}" for k, v in view.status.items()))
    lines.append("Inventory:" + ("" if view.inventory else " nothing"))
    lines += [f"{letter} - {text}" for letter, text in view.inventory]
    lines.append("Nearby (nearest first):" + ("" if view.nearby else " nothing of note"))
    lines += [f"- {name}: {'; '.join(spots)}" for name, spots in view.nearby]
    return "\n".join(lines)
