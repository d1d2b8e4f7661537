"""NetHack and MiniHack text as BALROG renders it: the port against the compiled wrapper's
text on 100 nle 1.3.0 states (tests/fixtures/balrog_nle), against an independent reading
of the C++ on fuzzed inputs, on constructed states, and in the envs."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from automem.engine.envs import make_env
from automem.engine.envs import nle_balrog as b

FIXTURE = Path(__file__).parents[1] / "fixtures" / "balrog_nle"


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """The fixture's reading of the C++ (checked against the compiled wrapper), as a module."""
    spec = importlib.util.spec_from_file_location("balrog_reference", FIXTURE / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_wrappers_own_text_on_100_states() -> None:
    states = np.load(FIXTURE / "states.npz")
    texts = json.loads(gzip.decompress((FIXTURE / "texts.json.gz").read_bytes()))
    assert len(texts) == 100
    for i, text in enumerate(texts):
        long, short, _ = text.split("\x1e")
        s = {k: v[i] for k, v in states.items()}
        got = b.contexts(b.text_message(s["tty_chars"]), s["glyphs"], s["blstats"], s["tty_chars"], s["tty_cursor"],
                         s["inv_strs"], s["inv_letters"])
        assert got == (long, short), f"state {i}"


def _screen(rng: random.Random) -> np.ndarray:
    """A terminal: blank rows, text at random indents, now and then a page marker."""
    tty = np.full((24, 80), 32, dtype=np.uint8)
    for r in range(24):
        if rng.random() < 0.5:
            words = rng.choice(["You see here a dagger.", "Points", "list!", "--More--", "(end)", "(1 of 3)",
                                "a - a +1 long sword", "\x1a", "x"])
            start = rng.choice([0, 1, 20, 40, 79 - len(words) + 1])
            tty[r, start : start + len(words)] = np.frombuffer(words.encode("latin-1"), dtype=np.uint8)
    if rng.random() < 0.2:
        tty[0] = 32
    return tty


def test_every_function_matches_the_reference_on_fuzzed_inputs(reference: ModuleType) -> None:
    from nle import nethack as nh

    rng = random.Random(7)
    for case in range(300):
        glyphs = np.array([rng.choice([rng.randrange(nh.MAX_GLYPH), nh.GLYPH_CMAP_OFF + rng.randrange(96)])
                           for _ in range(21 * 79)], dtype=np.int16).reshape(21, 79)
        blstats = np.array([rng.randrange(-2, 82), rng.randrange(-2, 23)] + [rng.randrange(0, 30)] * 25,
                           dtype=np.int64)
        cursor = np.array([rng.randrange(0, 24), rng.randrange(0, 80)], dtype=np.uint8)
        inv_strs = np.zeros((55, 80), dtype=np.uint8)
        inv_letters = np.zeros(55, dtype=np.uint8)
        for k in range(rng.randrange(0, 6)):
            item = rng.choice([b"a +0 dagger", b"2 food rations", b"x" * 80])
            inv_strs[k, : len(item)] = np.frombuffer(item, dtype=np.uint8)
            inv_letters[k] = ord("a") + k
        tty = _screen(rng)
        assert b.text_glyphs(glyphs, blstats) == reference.text_glyphs(glyphs, blstats), case
        assert b.text_cursor(glyphs, blstats, cursor) == reference.text_cursor(glyphs, blstats, cursor), case
        assert b.text_inventory(inv_strs, inv_letters) == reference.text_inventory(inv_strs, inv_letters), case
        assert b.text_message(tty) == reference.text_message(tty), case
    for noun in set(reference.PLURAL):
        assert b.plural(noun) == reference.PLURAL[noun]


def _map(cells: dict[tuple[int, int], int], hero: tuple[int, int] = (40, 10)) -> tuple[np.ndarray, np.ndarray]:
    """Room floor everywhere, `cells` (screen x, y) holding glyphs; blstats with the hero's place."""
    from nle import nethack as nh

    glyphs = np.full((21, 79), nh.GLYPH_CMAP_OFF + b.CMAP.index("room floor"), dtype=np.int16)
    for (x, y), glyph in cells.items():
        glyphs[y, x] = glyph
    blstats = np.zeros(27, dtype=np.int64)
    blstats[0], blstats[1] = hero
    return glyphs, blstats


def test_constructed_states_keep_the_wrappers_quirks() -> None:
    from nle import nethack as nh

    cmap = {name: nh.GLYPH_CMAP_OFF + i for i, name in enumerate(b.CMAP)}
    lich = next(i for i in range(nh.NUMMONS) if nh.permonst(i).mname == "lich")
    glyphs, blstats = _map({(41, 10): lich, (41, 11): lich, (45, 10): cmap["alter"], (40, 8): cmap["vertical wall"],
                            (40, 7): cmap["horizontal wall"], (30, 10): lich, (50, 3): lich})
    assert b.text_glyphs(glyphs, blstats).split("\n") == [
        "lich far eastnortheast and west",  # farthest first, then clockwise from north
        "alter near east",
        "vertical wall very near north",  # the wall stops the ray: the one behind it is not listed
        "lich adjacent east and southeast",
    ]
    # one kind seen twice in one direction at one distance: its plural, "ch" given an s as the C++ does
    glyphs, blstats = _map({(44, 10): lich, (45, 10): lich})
    assert b.text_glyphs(glyphs, blstats) == "lichs near east"
    assert b.where(3, -1) == ("near", "eastsoutheast") and b.where(0, 25) == ("very far", "north")
    # the cursor's row counts the message row; floor has no name, so the wrapper leaves a bare article
    assert b.text_cursor(glyphs, blstats, np.array([11, 40], dtype=np.uint8)) == "Yourself a "
    assert b.text_cursor(glyphs, blstats, np.array([11, 44], dtype=np.uint8)) == "near east lich"


def test_more_pages_are_joined_as_balrogs_auto_more_joins_them() -> None:
    def screen(text: str) -> np.ndarray:
        tty = np.full((24, 80), 32, dtype=np.uint8)
        tty[0, : len(text)] = np.frombuffer(text.encode(), dtype=np.uint8)
        return tty

    pages = [screen("You hit the rat.--More--"), screen("The rat bites!--More--"), screen("You kill the rat!")]
    assert b.auto_more(pages) == "You hit the rat.\nThe rat bites!\nYou kill the rat!"
    assert b.auto_more(pages[-1:]) == "You kill the rat!"


@pytest.mark.parametrize("name", ["nethack", "minihack"])
def test_the_envs_play_in_balrogs_text_with_the_same_game_underneath(name: str) -> None:
    balrog, automem = make_env(name, None, "balrog"), make_env(name)
    try:
        text, facts = balrog.reset(3)
        assert facts == automem.reset(3)[1]
        long, short = balrog.contexts()
        assert text == f"{short}\n{long}" and short.startswith("inventory:\n")
        assert long.startswith("message:\n") and "\n\nlanguage observation:\n" in long and "\n\nmap:\n" in long
        if name == "nethack":  # the first screen's message (the moon), before automem reads the ^X screen
            assert long.startswith("message:\nYou are lucky!  Full moon tonight.\n")
        rng = random.Random(3)
        actions = balrog.valid_actions()
        texts = [text]
        for _ in range(40):
            action = rng.choice(actions)
            step, plain = balrog.step(action), automem.step(action)
            assert (step.facts, step.reward, step.done, step.outcomes) == (plain.facts, plain.reward, plain.done,
                                                                           plain.outcomes)
            assert step.observation.startswith("inventory:") and balrog.contexts()[1] in step.observation
            texts.append(step.observation)
            if step.done:
                break
        again = [balrog.reset(3)[0]]
        rng = random.Random(3)
        for _ in range(len(texts) - 1):
            again.append(balrog.step(rng.choice(actions)).observation)
        assert again == texts  # a pure function of the seed and the actions
    finally:
        balrog.close()
        automem.close()
