"""Crafter's text as BALROG renders it, on constructed states (checked against BALROG's own
describe_frame on 868 states of 6 random episodes when it was written)."""

from __future__ import annotations

import numpy as np
import pytest

from automem.engine.envs import make_env
from automem.engine.envs.crafter_balrog import _env_text, contexts


@pytest.fixture(scope="module")
def env():
    game = make_env("crafter", None, "balrog")
    yield game
    game.close()


NAMES = ["None", "water", "grass", "stone", "path", "sand", "tree", "lava", "coal", "iron", "diamond", "table",
         "furnace", "player", "cow", "zombie", "skeleton", "arrow", "plant"]


def grid(cells: dict[tuple[int, int], str], size: int = 64) -> np.ndarray:
    """A world of grass, the player at (32, 32), `cells` at offsets from the player."""
    world = np.full((size, size), NAMES.index("grass"))
    world[32, 32] = NAMES.index("player")
    for (dx, dy), name in cells.items():
        world[32 + dx, 32 + dy] = NAMES.index(name)
    return world


def test_nearest_of_each_kind_in_scan_order() -> None:
    world = grid({(-3, -2): "tree", (-1, 1): "tree", (2, 0): "water", (0, 1): "cow", (4, 3): "stone"})
    text = _env_text(world, (32, 32), (0, 1), NAMES, NAMES.index("player"))
    # columns west to east, each north to south: grass met first, listed first, at its nearest
    assert text == ("You see:\n- grass 1 step to your west\n- tree 2 steps to your south-west\n"
                    "- cow 1 step to your south\n- water 2 steps to your east\n- stone 7 steps to your south-east\n\n"
                    "You face cow at your front.")


def test_ties_keep_the_first_met_and_the_view_is_9_by_7() -> None:
    world = grid({(0, -1): "tree", (-1, 0): "tree", (0, 4): "lava", (5, 0): "diamond"}, size=64)
    world[:, :] = np.where(world == NAMES.index("grass"), NAMES.index("sand"), world)
    text = _env_text(world, (32, 32), (1, 0), NAMES, NAMES.index("player"))
    assert "- tree 1 step to your west" in text and "lava" not in text and "diamond" not in text
    assert text.endswith("You face sand at your front.")


def test_at_the_world_edge_the_slice_wraps_as_balrogs_does() -> None:
    world = grid({})
    text = _env_text(world, (2, 32), (-1, 0), NAMES, NAMES.index("player"))  # x - 4 < 0: an empty window
    assert text == "You see nothing away from you.\n\nYou face nothing at your front."


def test_short_term_is_status_and_inventory(env) -> None:
    env.reset(0)
    player = env._env._player
    player.inventory.update(wood=3, sapling=1, health=5)
    player.sleeping = True
    long, short = contexts(env._env, env._env.semantic(), NAMES, NAMES.index("player"))
    assert short == ("Your status:\n- health: 5/9\n- food: 9/9\n- drink: 9/9\n- energy: 9/9\n\n"
                     "Your inventory:\n- sapling: 1\n- wood: 3")
    # BALROG joins the status and the view with a blank line of its own: four newlines
    assert long.startswith("You are sleeping, and will not be able take actions until energy is full.\n\n\n\nYou see:")


def test_the_observation_is_the_current_step_as_balrog_shows_it(env) -> None:
    observation, _ = env.reset(0)
    long, short = env.contexts()
    assert observation == f"{short}\n{long}" and short.endswith("You have nothing in your inventory.")
    automem = make_env("crafter")
    text, _ = automem.reset(0)
    assert automem.contexts() == (text, "")
