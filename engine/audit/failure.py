"""Where an episode failed, and which rule says so. Pure: steps and outcomes in, a Failure out.

Rules, most serious first (the first rule that fires names the failure):
  death                 the game reports the agent died
  resource_lost         an item count fell on a step whose command does not use items up
  invalid_actions       `invalid_run` invalid actions in a row
  repeated_observation  the agent got nowhere: the same place, facing, items, achievements and terrain in
                        view `repeat_run` steps in a row (creatures moving around it do not count)
  unproductive_streak   `idle_run` steps with no achievement and no level gained
The failing decisions are those of the `window` steps up to the failure (all of a run).
"""

from __future__ import annotations

from typing import Callable, Iterator

import msgspec

from automem.engine.audit.result import Failure
from automem.schemas.events import OutcomeObserved, StepTaken

# First words of commands that legitimately use items up (Crafter crafting and placing,
# NetHack's item commands). Keys that answer a NetHack prompt continue the command before.
CONSUMING = frozenset({"place", "make", "drop", "throw", "eat", "quaff", "read", "zap", "fire", "apply", "put",
                       "pay", "offer", "wield", "wear", "remove", "puton", "takeoff", "dip", "engrave", "rub"})
CONTINUING = frozenset({"more", "esc", "enter", "yes", "no"})


class Rules(msgspec.Struct, frozen=True):
    invalid_run: int = 5
    repeat_run: int = 10
    idle_run: int = 100
    window: int = 5


class Found(msgspec.Struct, frozen=True):
    failure: Failure
    steps: tuple[int, ...]  # the steps whose decisions led to it


Rule = Callable[[list[StepTaken], list[OutcomeObserved], Rules], "Found | None"]


def scene(step: StepTaken) -> tuple:
    """What the agent can tell apart of its situation; creatures moving around it do not count."""
    f = step.facts
    return (f.position, f.facing, tuple(sorted(f.inventory.items())), f.achievements, f.depth, f.level, f.view)


def _window(steps: list[StepTaken], end: int, size: int) -> tuple[int, ...]:
    return tuple(s.step for s in steps if end - size < s.step <= end)


def _runs(steps: list[StepTaken], same: Callable[[int, StepTaken], bool], length: int) -> int | None:
    """Index in `steps` where the first run of `length` steps satisfying `same` ends."""
    run = 0
    for i, step in enumerate(steps):
        run = run + 1 if same(i, step) else 0
        if run >= length:
            return i
    return None


def _items(step: StepTaken) -> dict[str, int]:
    """Counts per item; NetHack's keys ("c - uncursed +1 leather armor (being worn)") by inventory letter."""
    out: dict[str, int] = {}
    for key, n in step.facts.inventory.items():
        letter, sep, _ = key.partition(" - ")
        out[letter if sep else key] = out.get(letter if sep else key, 0) + n
    return out


def death(steps: list[StepTaken], outcomes: list[OutcomeObserved], rules: Rules) -> Found | None:
    died = next((o for o in outcomes if o.kind == "death"), None)
    if died is None:
        return None
    return Found(Failure(died.step, "death", died.detail), _window(steps, died.step, rules.window))


def items_lost(steps: list[StepTaken]) -> Iterator[tuple[StepTaken, str, int, int]]:
    """Every (step, item, count before, count after) where an item count fell on a step whose
    command does not use items up, in order."""
    verb = ""
    for prev, step in zip(steps, steps[1:]):
        word = step.action.lower().split(" ")[0] if step.action else ""
        if len(step.action) > 1 and word not in CONTINUING:
            verb = word  # a prompt answer or a "more" continues the command before it
        if verb in CONSUMING:
            continue
        had, now = _items(prev), _items(step)
        for item, count in had.items():
            if now.get(item, 0) < count:
                named = next((k for k in prev.facts.inventory if k == item or k.startswith(f"{item} - ")), item)
                yield step, named, count, now.get(item, 0)


def resource_lost(steps: list[StepTaken], outcomes: list[OutcomeObserved], rules: Rules) -> Found | None:
    for step, named, count, left in items_lost(steps):
        detail = f"{named} {count}->{left} after {step.action!r}, which does not use items up"
        return Found(Failure(step.step, "resource_lost", detail), _window(steps, step.step, rules.window))
    return None


def invalid_actions(steps: list[StepTaken], outcomes: list[OutcomeObserved], rules: Rules) -> Found | None:
    end = _runs(steps, lambda i, s: not s.valid, rules.invalid_run)
    if end is None:
        return None
    first = steps[end - rules.invalid_run + 1].step
    detail = f"{rules.invalid_run} invalid actions in a row from step {first} ({steps[end].raw_action[:60]!r} last)"
    return Found(Failure(steps[end].step, "invalid_actions", detail), _window(steps, steps[end].step, rules.invalid_run))


def repeated_observation(steps: list[StepTaken], outcomes: list[OutcomeObserved], rules: Rules) -> Found | None:
    end = _runs(steps, lambda i, s: i > 0 and scene(s) == scene(steps[i - 1]), rules.repeat_run - 1)
    if end is None:
        return None
    size = rules.repeat_run
    detail = f"the same place, facing, items and terrain {size} steps in a row up to step {steps[end].step} (last action {steps[end].action!r})"
    return Found(Failure(steps[end].step, "repeated_observation", detail), _window(steps, steps[end].step, size))


def unproductive_streak(steps: list[StepTaken], outcomes: list[OutcomeObserved], rules: Rules) -> Found | None:
    progress = {o.step for o in outcomes if o.kind in ("achievement", "level") and o.value > 0}
    end = _runs(steps, lambda i, s: s.step not in progress, rules.idle_run)
    if end is None:
        return None
    detail = f"{rules.idle_run} steps without an achievement or a level gained, up to step {steps[end].step}"
    return Found(Failure(steps[end].step, "unproductive_streak", detail), _window(steps, steps[end].step, rules.idle_run))


RULES: dict[str, Rule] = {f.__name__: f for f in (death, resource_lost, invalid_actions, repeated_observation,
                                                   unproductive_streak)}


def detect(steps: list[StepTaken], outcomes: list[OutcomeObserved], rules: Rules = Rules(),
           only: str | None = None) -> Found | None:
    """The failure of an episode by the first rule above that fires (or by rule `only`), or None."""
    for name, rule in RULES.items():
        if only is None or name == only:
            found = rule(steps, outcomes, rules)
            if found is not None:
                return found
    return None


def named(steps: list[StepTaken], step: int, rules: Rules = Rules()) -> Found:
    """A failure the user names (`--failure STEP`): its decisions are those of the window before it."""
    return Found(Failure(step, "named", f"named by the user at step {step}"), _window(steps, step, rules.window))
