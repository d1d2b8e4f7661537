"""The three games behind the text-env port: seeded, deterministic, forgiving of action text."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from automem.engine.envs import ENVS, MINIHACK_IDS, TASKS, make_env, resolve_task
from automem.engine.envs.nethack_env import DLVL_PROGRESS, XL_PROGRESS, balrog_progress
from automem.engine.envs.nle_base import WORDS
from automem.schemas.errors import UserError

PROBE = Path(__file__).parents[1] / "support" / "envs_determinism_probe.py"
DIRECTIONS = {"north": (0, -1), "south": (0, 1), "east": (1, 0), "west": (-1, 0)}


def spy_keys(env) -> list[int]:
    """Record the key of every NLE step the env takes from now on."""
    sent: list[int] = []
    inner = env._env
    original = inner.step

    def step(index: int):
        sent.append(int(inner.actions[index]))
        return original(index)

    inner.step = step
    return sent


def offset(phrase: str) -> tuple[int, int]:
    """ "2 north, 3 east" -> (3, -2)."""
    dx = dy = 0
    for count, word in re.findall(r"(\d+) (north|south|east|west)", phrase):
        ux, uy = DIRECTIONS[word]
        dx, dy = dx + ux * int(count), dy + uy * int(count)
    return dx, dy


# ------------------------------------------------------------------ registry


def test_registry_names_games_and_tasks() -> None:
    assert ENVS == ("crafter", "nethack", "minihack")
    assert TASKS["crafter"] == ("default",) and TASKS["nethack"] == ("challenge",)
    assert len(TASKS["minihack"]) == 8 and TASKS["minihack"] == tuple(MINIHACK_IDS)


@pytest.mark.parametrize(
    ("name", "task", "names"),
    [("chess", None, "crafter, nethack, minihack"), ("minihack", "boxoban-hard", "corridor-r3, mazewalk-9x9"),
     ("crafter", "hard", "default")],
)  # fmt: skip
def test_unknown_env_or_task_is_a_user_error(name: str, task: str | None, names: str) -> None:
    for call in (make_env, resolve_task):
        with pytest.raises(UserError) as caught:
            call(name, task)
        message = str(caught.value)
        assert names in message and "\n" not in message


def test_importing_the_registry_loads_no_game() -> None:
    games = "{'crafter', 'nle', 'minihack', 'gymnasium'}"
    code = f"import sys, automem.engine.envs; print(sorted({{m.split('.')[0] for m in sys.modules}} & {games}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ determinism


@pytest.fixture(scope="module")
def probes() -> list[dict[str, str]]:
    """The probe's digests from two fresh processes with different hash seeds, run at once."""
    runs = [
        subprocess.Popen([sys.executable, str(PROBE)], stdout=subprocess.PIPE, env={**os.environ, "PYTHONHASHSEED": h})
        for h in ("1", "2")
    ]
    outs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs)
    return [json.loads(out) for out in outs]


@pytest.mark.slow
def test_same_seed_and_actions_give_the_same_text_in_fresh_processes(probes: list[dict[str, str]]) -> None:
    first, second = probes
    assert len(first) == 16 and first == second


def test_an_earlier_episode_leaves_no_trace(probes: list[dict[str, str]]) -> None:
    digests = probes[0]
    for key in (k.rsplit("/", 1)[0] for k in digests if k.endswith("/play")):
        assert digests[f"{key}/play"] == digests[f"{key}/after_other"], key


def test_different_seeds_give_different_observations(probes: list[dict[str, str]]) -> None:
    digests = probes[0]
    for key in (k.rsplit("/", 1)[0] for k in digests if k.endswith("/play")):
        assert digests[f"{key}/first"] != digests[f"{key}/other_first"], key


# ------------------------------------------------------------------ crafter


@pytest.fixture(scope="module")
def crafter():
    env = make_env("crafter")
    yield env
    env.close()


@pytest.mark.slow
def test_crafter_steps_like_the_original_without_rendering() -> None:
    """Same world, creatures, items and rewards as crafter's own (image-rendering) Env, through
    nightfall, where rendering draws from the world's random generator."""
    import crafter as crafter_pkg

    from automem.engine.envs.crafter_env import ACTIONS

    class Original(crafter_pkg.Env):  # despawn order made reproducible, as in the text env
        def _balance_chunk(self, chunk, objs):
            index = self._world._obj_map
            super()._balance_chunk(chunk, sorted(objs, key=lambda o: int(index[tuple(o.pos)])))

    original, text = Original(seed=5), make_env("crafter")
    original.reset()
    text.reset(5)
    kinds = [getattr(crafter_pkg.objects, k) for k in ("Player", "Cow", "Zombie", "Skeleton", "Arrow", "Plant")]
    semantic = crafter_pkg.engine.SemanticView(text._env._world, kinds)
    rnd, night = random.Random(0), 0
    for _ in range(230):
        action = rnd.randrange(5)  # noop and moves: the player lives into the night
        _, reward, done, info = original.step(action)
        result = text.step(ACTIONS[action])
        assert np.array_equal(info["semantic"], semantic())
        assert info["inventory"] == text._env._player.inventory
        assert (reward, done) == (result.reward, result.done)
        night += text._env._world.daylight < 0.5
        if done:
            break
    assert night > 20


@pytest.mark.slow
def test_crafter_collecting_wood_is_an_achievement(crafter) -> None:
    observation, facts = crafter.reset(0)
    assert "Around you" in observation and "tree" in observation
    dx, dy = offset(next(n for n in facts.nearby if n.startswith("tree "))[5:])
    plan = ["Move West" if dx < 0 else "Move East"] * (abs(dx) - (dy == 0))
    plan += ["Move North" if dy < 0 else "Move South"] * abs(dy)
    plan += ["Move West" if dx < 0 else "Move East"] * (dy == 0)  # the last move only turns
    outcomes = [o for action in [*plan, "Do"] for o in crafter.step(action).outcomes]
    assert ("achievement", "collect_wood", 1.0) in outcomes
    assert crafter.progression() == pytest.approx(1 / 22)
    result = crafter.step("Noop")
    assert result.facts.inventory == {"wood": 1} and result.facts.achievements == ("collect_wood",)
    assert "Inventory: wood 1." in result.observation and "collect_wood" in result.observation


@pytest.mark.slow
def test_crafter_action_names_are_forgiving_and_reach_the_game(crafter) -> None:
    from automem.engine.envs.crafter_env import ACTIONS

    crafter.reset(1)
    sent: list[int] = []
    inner_step = crafter._env.step
    crafter._env.step = lambda index: sent.append(index) or inner_step(index)
    assert crafter.valid_actions() == ACTIONS and len(ACTIONS) == 17
    for name in ACTIONS:
        for variant in (name, name.upper(), name.lower().replace(" ", "_"), f"  {name.replace(' ', '   ')} "):
            result = crafter.step(variant)
            assert (result.action, result.valid, result.error) == (name, True, "")
            assert sent[-1] == ACTIONS.index(name)
    assert crafter.step("move_left").action == "Move West"
    for bad in ("jump", "", "Move Up and away"):
        result = crafter.step(bad)
        assert (result.action, result.valid) == ("Noop", False) and sent[-1] == 0
        assert "valid actions" in result.error and len(result.error) < 400
    rnd = random.Random(2)
    for _ in range(3000):  # random play dies of hunger, thirst or zombies well before this
        result = crafter.step(rnd.choice(ACTIONS))
        if result.done:
            break
    assert result.done and any(kind == "death" for kind, _, _ in result.outcomes)
    taken = len(sent)
    after = crafter.step("Noop")
    assert after.done and not after.valid and "over" in after.error and len(sent) == taken
    assert 0.0 <= crafter.progression() <= 1.0


# ------------------------------------------------------------------ nethack


@pytest.fixture(scope="module")
def nethack():
    env = make_env("nethack")
    yield env
    env.close()


def test_nethack_observation_names_its_parts(nethack) -> None:
    observation, facts = nethack.reset(3)
    for part in ("Message: You are a", "Map (rows y=", "Status: HP", "AC", "XL", "depth", "gold",
                 "hunger", "turn", "Inventory:\na - ", "Nearby (nearest first)"):  # fmt: skip
        assert part in observation, part
    assert "@" in observation and facts.depth == 1 and facts.level == 1 and facts.health > 0
    assert facts.position is not None and facts.inventory and "You are a" in facts.extra["character"]
    assert sorted(facts.inventory) == list(facts.inventory) and all(n > 0 for n in facts.inventory.values())


def test_nethack_action_words_and_letters_reach_the_game(nethack) -> None:
    nethack.reset(4)
    sent = spy_keys(nethack)
    assert {"north", "far east", "search", "eat", "open", "kick", "pickup", "down", "esc", "a", "Z"} <= set(
        nethack.valid_actions()
    )
    for name in nethack.valid_actions():
        variants = [name] if len(name) == 1 else [name, name.upper(), name.replace(" ", "_"), f" {name} "]
        for variant in variants:
            sent.clear()
            result = nethack.step(variant)
            assert (result.action, result.valid) == (name, True), variant
            assert sent[0] == (WORDS[name] if len(name) > 1 else ord(name))
            nethack.step("esc")  # leave whatever prompt or menu the key opened
        assert not nethack.step("search").done, name  # a turn passes: no stall timeout
    assert nethack.step("move north").action == "north" and nethack.step("run west").action == "far west"


def test_nethack_unknown_action_searches_and_says_why(nethack) -> None:
    nethack.reset(4)
    sent = spy_keys(nethack)
    result = nethack.step("dance wildly")
    assert (result.action, result.valid) == ("search", False) and sent[0] == ord("s")
    assert "unknown action" in result.error and len(result.error) < 300


def test_nethack_prompts_take_directions_and_letters(nethack) -> None:
    nethack.reset(4)
    asked = nethack.step("open")
    assert "In what direction?" in asked.observation and "answer with one key" in asked.observation
    answered = nethack.step("north")
    assert "In what direction?" not in answered.observation
    menu = nethack.step("inventory")
    assert "Window:" in menu.observation and "A menu is open" in menu.observation
    assert "Window:" not in nethack.step("esc").observation
    dropping = nethack.step("drop")
    assert "What do you want to drop?" in dropping.observation
    letter = next(iter(dropping.facts.inventory))[0]
    answered = nethack.step(letter)
    assert answered.action == letter and "What do you want to drop?" not in answered.observation


def test_nethack_death_ends_the_episode_cleanly(nethack) -> None:
    nethack.reset(1)
    rnd = random.Random(1)
    moves = [*DIRECTIONS, "northeast", "southwest", "far east", "far west", "search", "fight", "esc"]
    for _ in range(3000):
        result = nethack.step(rnd.choice(moves))
        if result.done:
            break
    assert result.done and result.facts.extra["end"] in ("died", "starved")
    assert result.facts.health == 0.0 and any(kind == "death" for kind, _, _ in result.outcomes)
    assert "Game over" in result.observation and "top ten" not in result.observation
    after = nethack.step("north")
    assert after.done and not after.valid and "over" in after.error
    assert 0.0 <= nethack.progression() <= 1.0


def test_balrog_progression_table() -> None:
    assert len(DLVL_PROGRESS) == 50 and len(XL_PROGRESS) == 30
    assert balrog_progress(1, 1) == 0.0
    assert balrog_progress(5, 1) == pytest.approx(0.026482449457437766)
    assert balrog_progress(2, 10) == pytest.approx(0.17909953770432294)  # the better of the two
    assert all(a <= b for a, b in zip(DLVL_PROGRESS, DLVL_PROGRESS[1:]))
    assert all(a <= b for a, b in zip(XL_PROGRESS, XL_PROGRESS[1:]))
    assert 0.0 <= balrog_progress(50, 30) <= 1.0 and balrog_progress(99, 99) == 0.0


# ------------------------------------------------------------------ minihack


def test_minihack_tasks_all_start_with_the_nethack_vocabulary() -> None:
    for task in TASKS["minihack"]:
        env = make_env("minihack", task)
        observation, facts = env.reset(0)
        assert "Map (rows" in observation and facts.depth == 1
        assert env.fallback_action == "search" and "search" in env.valid_actions()
        assert "up" not in env.valid_actions() and env.progression() == 0.0
        env.close()
    assert make_env("minihack").task == TASKS["minihack"][0] == resolve_task("minihack")


def test_minihack_reaching_the_goal_is_success() -> None:
    env = make_env("minihack", "mazewalk-9x9")
    for seed in range(20):  # a maze whose stairs down start next to the player
        observation, facts = env.reset(seed)
        stairs = [n[len("staircase down ") :] for n in facts.nearby if n.startswith("staircase down ")]
        if stairs and max(map(abs, offset(stairs[0]))) == 1:
            break
    dx, dy = offset(stairs[0])
    step = {(0, -1): "north", (0, 1): "south", (1, 0): "east", (-1, 0): "west", (1, -1): "northeast",
            (-1, -1): "northwest", (1, 1): "southeast", (-1, 1): "southwest"}[(dx, dy)]  # fmt: skip
    result = env.step(step)
    assert result.done and result.facts.extra["end"] == "task successful"
    assert ("achievement", "task solved", 1.0) in result.outcomes and env.progression() == 1.0
    result = env.step("nonsense")
    assert (result.action, result.valid) == ("search", False)
    env.reset(seed)
    assert env.progression() == 0.0
    env.close()
