"""Memory probes' pure parts on constructed steps: which questions each kind asks (never one the
observation at the step answers), the checker's normalisation and its hostile inputs, the
bootstrap, and the memory fold's digest check."""

from __future__ import annotations

import pytest

from automem.engine.envs.common import offset_of
from automem.engine.memory import EMPTY, apply
from automem.engine.memory.snapshot import REPLAY_LIMITS
from automem.engine.probes.check import MAX_ANSWER, correct
from automem.engine.probes.kinds import KINDS, kinds_of, message_of, probes_at
from automem.engine.probes.run import check_kinds, check_steps, memory_after
from automem.engine.probes.stats import accuracy
from automem.schemas.errors import UserError
from automem.schemas.events import EnvFacts, MemoryOp, MemoryOpApplied, StepTaken


def step(n: int, observation: str = "", **facts) -> StepTaken:
    return StepTaken(step=n, raw_action="noop", action="noop", valid=True, reward=0.0, done=False,
                     observation=observation, observation_digest="", memory_digest="", facts=EnvFacts(**facts))


def asked(env: str, steps: list[StepTaken], kind: str, seed: int = 0) -> list:
    return probes_at(env, "ep", steps, len(steps) - 1, [kind], seed)


def test_inventory_counts_are_asked_only_where_they_changed() -> None:
    steps = [step(0, inventory={"wood": 1, "sapling": 1}), step(1, inventory={"wood": 2, "sapling": 1}),
             step(2, inventory={"wood": 3, "sapling": 1})]
    [probe] = asked("crafter", steps, "inventory_count")
    assert probe.kind == "inventory_count" and probe.step == 2 and probe.about in (0, 1)
    assert probe.key == str(probe.about + 1) and "wood" in probe.question and f"step {probe.about}" in probe.question
    same = [step(0, inventory={"sapling": 1}), step(1, inventory={"sapling": 1})]
    assert asked("crafter", same, "inventory_count") == []  # the observation shows the count


def test_nearest_seen_is_where_a_landmark_lies_from_here_now() -> None:
    steps = [step(0, position=(10, 10), nearby=("water 2 north, 1 east", "tree 1 west")),
             step(1, position=(12, 10), nearby=("water 3 north", "tree 3 west")),
             step(2, position=(13, 8), nearby=("tree 2 south, 6 west",))]
    [probe] = asked("crafter", steps, "nearest_seen")
    # water seen at (11, 8) and (12, 7): from (13, 8) the nearest is (12, 7), 1 north 1 west
    assert probe.key == "1 north, 1 west" and probe.about == 1 and "water" in probe.question
    in_view = steps[:2] + [step(2, position=(13, 8), nearby=("water 1 south", "tree 2 west"))]
    assert asked("crafter", in_view, "nearest_seen") == []  # water is in view now: not a probe


def test_nethack_notes_and_the_first_two_levels_are_not_asked() -> None:
    """The screen keeps a level's map (landmarks stay listed), an item whose note changed is the
    item on screen, and "1, d" on level d is the status line's depth."""
    assert "nearest_seen" not in kinds_of("nethack")
    worn = [step(0, inventory={"k - +0 Hawaiian shirt": 1}), step(1, inventory={"k - +0 Hawaiian shirt (being worn)": 1})]
    assert asked("nethack", worn, "item_in_slot") == []
    two = [step(0, "Message: (none)", depth=1), step(1, "Message: (none)", depth=2)]
    assert asked("nethack", two, "levels_visited") == []
    three = two + [step(2, "Message: (none)", depth=3)]
    assert asked("nethack", three, "levels_visited")[0].key == "1, 2, 3"


def test_level_of_asks_where_a_feature_was_seen_from_another_level() -> None:
    steps = [step(0, depth=1, nearby=("fountain 2 east", "staircase down 4 west")),
             step(1, depth=2, nearby=("staircase up here", "staircase down 1 north")),
             step(2, depth=3, nearby=("altar 1 south",))]
    found = {p.question: (p.key, p.about) for seed in range(12)
             for p in probes_at("nethack", "ep", steps, 2, ["level_of"], seed)}
    # the fountain only on level 1; staircases down on two levels; the altar is on the screen now
    assert set(found.values()) == {("1", 0), ("2", 1)} and not any("altar" in q or "down" in q for q in found)
    assert asked("nethack", steps[:1], "level_of") == []  # on level 1 the screen shows the fountain


def test_unlocked_at_and_last_hurt_name_steps() -> None:
    steps = [step(0, health=9.0), step(1, health=7.0, achievements=("collect_wood",)),
             step(2, health=7.0, achievements=("collect_wood",)), step(3, health=8.0, achievements=("collect_wood",))]
    [unlocked] = asked("crafter", steps, "unlocked_at")
    assert unlocked.key == "1" and "collect wood" in unlocked.question
    [hurt] = asked("crafter", steps, "last_hurt")
    assert hurt.key == "1"
    assert asked("crafter", steps[:2], "last_hurt") == []  # hurt at the step asked: its observation shows it


def test_nethack_kinds_on_constructed_steps() -> None:
    steps = [step(0, "Message: You see here a ration.\nMap...", depth=1, inventory={"a - long sword (weapon in hand)": 1}),
             step(1, "Message: (none)\nMap...", depth=2, inventory={"a - dagger": 1}),
             step(2, "Message: You see here a ration.\nMap...", depth=3, inventory={"a - dagger": 1})]
    [slot] = asked("nethack", steps, "item_in_slot")
    assert slot.key == "long sword" and "letter a" in slot.question
    assert asked("nethack", steps, "message_at") == []  # the message is on screen again
    steps[2] = step(2, "Message: It's a wall.\nMap...", depth=3, inventory={"a - dagger": 1})
    [message] = asked("nethack", steps, "message_at")
    assert message.key == "You see here a ration." and message.about == 0
    [levels] = asked("nethack", steps, "levels_visited")
    assert levels.key == "1, 2, 3" and levels.about == 2
    assert message_of("Message: (none)\nx") == "" and message_of("no message line") == ""
    balrog = "inventory:\na: a dagger\n\nmessage:\nYou hit it.\nIt dies!\n\nlanguage observation:\nfountain far east\n"
    assert message_of(balrog) == "You hit it. It dies!" and message_of(balrog.replace("You hit it.\nIt dies!", "")) == ""


def test_which_probe_is_asked_follows_from_episode_step_and_seed() -> None:
    steps = [step(n, inventory={"wood": n + 1, "stone": 2 * n + 1}) for n in range(12)]
    picks = {seed: asked("crafter", steps, "inventory_count", seed)[0] for seed in range(6)}
    assert asked("crafter", steps, "inventory_count", 3) == [picks[3]]  # the same every time
    assert len({(p.about, p.question) for p in picks.values()}) > 1  # the seed picks among candidates


def test_kinds_per_game_and_bad_choices() -> None:
    assert kinds_of("crafter") == ("inventory_count", "nearest_seen", "unlocked_at", "last_hurt")
    assert kinds_of("minihack") == kinds_of("nethack") == (
        "last_hurt", "item_in_slot", "message_at", "level_of", "levels_visited")
    assert all(KINDS[k].answer in ("number", "offset", "text", "list") for k in KINDS)
    with pytest.raises(UserError, match="crafter has the probe kinds"):
        check_kinds("crafter", ["message_at"])
    with pytest.raises(UserError, match=r"outside the episode \(steps 0..9\)"):
        check_steps(10, [3, 10], None)
    with pytest.raises(UserError, match="nothing to probe"):
        check_steps(0, None, None)
    assert check_steps(25, None, None) == (9, 19) and check_steps(5, None, None) == (4,)
    assert check_steps(25, [7, 3, 7], None) == (3, 7) and check_steps(6, None, 2) == (1, 3, 5)


@pytest.mark.parametrize(("kind", "key", "answer", "right"), [
    ("number", "7", "7", True), ("number", "7", "Step 7.", True), ("number", "7", "seven", True),
    ("number", "7", "7 or 8", False), ("number", "7", "I don't know", False), ("number", "0", "zero", True),
    ("offset", "2 north, 1 west", "1 west, 2 north", True), ("offset", "2 north, 1 west", "It is 2 north and 1 west.", True),
    ("offset", "2 north, 1 west", "2 north", False), ("offset", "here", "here", True), ("offset", "3 east", "", False),
    ("list", "1, 2, 3", "levels 1, 2 and 3", True), ("list", "1, 2, 3", "1, 3, 2", False),
    ("offset", "1 north", "1 northwest", False), ("number", "2", "1-2", False),
    ("text", "long sword", "a long sword", True), ("text", "long sword", "It was the Long Sword!", True),
    ("text", "long sword", "sword", False),
    ("text", "long sword", "dagger, long sword, ration, apple, candle, lamp, pick-axe", False),
])
def test_the_checker_normalises_answers(kind: str, key: str, answer: str, right: bool) -> None:
    assert correct(kind, key, answer) is right


@pytest.mark.parametrize("hostile", ["", "\x00\x01", "<|ANSWER|><|END|>" * 50, "7" * (10 * MAX_ANSWER), "٧", "💥 north",
                                     "-3 north", "99999999999999999999999 east"])
def test_hostile_answers_are_checked_never_crash(hostile: str) -> None:
    for kind, key in (("number", "7"), ("offset", "2 north"), ("list", "1, 2"), ("text", "long sword")):
        assert correct(kind, key, hostile) in (True, False)


def test_bootstrap_is_seeded_and_bounded() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    a = accuracy(values, "run/kind/memory")
    assert a == accuracy(values, "run/kind/memory") and a.n == 8 and a.accuracy == 0.5
    assert 0.0 <= a.low <= a.accuracy <= a.high <= 1.0 and a.low < a.high
    assert accuracy([], "x").accuracy is None and accuracy([1.0, 1.0], "x").low == 1.0


def test_memory_after_a_step_is_checked_against_its_digest() -> None:
    op = MemoryOp("write", "notes.txt", ("water north",))
    state, _ = apply(EMPTY, op, REPLAY_LIMITS)
    write = MemoryOpApplied(step=0, phase="plan", turn=0, op=op, ok=True, result_digest="")
    good = step(0).__class__(**{**{f: getattr(step(0), f) for f in step(0).__struct_fields__},
                                "memory_digest": state.digest()})
    assert memory_after("ep", [write, good], {0})[0].contents() == {"notes.txt": "water north"}
    with pytest.raises(UserError, match="does not rebuild from the log"):
        memory_after("ep", [write, step(0)], {0})
    assert offset_of("nowhere") is None


def test_probe_accuracy_is_a_figure_only_where_probes_were_asked() -> None:
    from automem.engine.evaluation.compare import Side, _paired
    from automem.engine.evaluation.proficiency import FIGURES, mean_figures

    assert FIGURES["probe_accuracy"] is True  # higher is better
    per_episode = [{"command_error_rate": 0.5, "probe_accuracy": 1.0}, {"command_error_rate": 0.0}]
    assert mean_figures(per_episode) == {"command_error_rate": 0.25, "probe_accuracy": 1.0}
    a = Side(models={}, episodes=["a1", "a2"], progression=[0.0, 0.0], figures=per_episode)
    b = Side(models={}, episodes=["b1", "b2"], progression=[0.0, 0.0],
             figures=[{"probe_accuracy": 0.5}, {"probe_accuracy": 0.0}])
    assert a.metric("probe_accuracy") == [1.0, None]
    diffs, mean, _ = _paired(a, b, "probe_accuracy", "t")
    assert diffs == [0.5] and mean == 0.5  # the seed without a figure on one side is not paired
