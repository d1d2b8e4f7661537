"""Where an episode failed, and which rule says so. Pure: steps and outcomes in, a Failure out.

Rules, most serious first (the first rule that fires names the failure):
  death                 the game reports the agent died
  resource_lost         an item count fell on a step whose action does not use items up
  invalid_actions       `invalid_run` invalid actions in a row
  repeated_observation  the agent got nowhere: the same place, facing, items, achievements and terrain in
                        view `repeat_run` steps in a row (creatures moving around it do not count)
  unproductive_streak   `idle_run` steps with no achievement and no level gained
The failing decisions are those of the `window` steps up to the failure (all of a streak).
"""

from __future__ import annotations

import msgspec

from automem.schemas.events import OutcomeObserved, StepTaken

from .result import Failure

# First words of actions that legitimately use items up (Crafter crafting and placing,
# NetHack's item commands); single letters answer NetHack's item prompts.
CONSUMING = frozenset({"place", "make", "drop", "throw", "eat", "quaff", "read", "zap", "fire", "apply", "put",
                       "pay", "offer", "wield", "wear", "remove", "puton", "takeoff", "dip", "engrave", "rub"})


class Rules(msgspec.Struct, frozen=True):
    invalid_run: int = 5
    repeat_run: int = 10
    idle_run: int = 100
    window: int = 5


class Found(msgspec.Struct, frozen=True):
    failure: Failure
    steps: tuple[int, ...]  # the steps whose decisions led to it


def _scene(step: StepTaken) -> tuple:
    f = step.facts
    return (f.position, f.facing, tuple(sorted(f.inventory.items())), f.achievements, f.depth, f.level, f.view)


def _window(steps: list[StepTaken], end: int, size: int) -> tuple[int, ...]:
    return tuple(s.step for s in steps if end - size < s.step <= end)


def _runs(steps: list[StepTaken], same: object, length: int) -> int | None:
    """Index in `steps` where the first run of `length` steps satisfying `same` ends."""
    run = 0
    for i, step in enumerate(steps):
        run = run + 1 if same(i, step) else 0  # type: ignore[operator]
        if run >= length:
            return i
    return None


def detect(steps: list[StepTaken], outcomes: list[OutcomeObserved], rules: Rules = Rules()) -> Found | None:
    """The failure of an episode by the rules above, or None if no rule fires."""
    death = next((o for o in outcomes if o.kind == "death"), None)
    if death is not None:
        return Found(Failure(death.step, "death", death.detail), _window(steps, death.step, rules.window))
    for prev, step in zip(steps, steps[1:]):
        verb = step.action.lower().split(" ")[0] if step.action else ""
        if len(step.action) == 1 or verb in CONSUMING:
            continue
        for item, had in prev.facts.inventory.items():
            now = step.facts.inventory.get(item, 0)
            if now < had:
                detail = f"{item} {had}->{now} after {step.action!r}, which does not use items up"
                return Found(Failure(step.step, "resource_lost", detail), _window(steps, step.step, rules.window))
    end = _runs(steps, lambda i, s: not s.valid, rules.invalid_run)
    if end is not None:
        first = steps[end - rules.invalid_run + 1].step
        detail = f"{rules.invalid_run} invalid actions in a row from step {first} ({steps[end].raw_action[:60]!r} last)"
        return Found(Failure(steps[end].step, "invalid_actions", detail), _window(steps, steps[end].step, rules.invalid_run))
    end = _runs(steps, lambda i, s: i > 0 and _scene(s) == _scene(steps[i - 1]), rules.repeat_run - 1)
    if end is not None:
        size = rules.repeat_run
        detail = f"the same place, facing, items and terrain {size} steps in a row up to step {steps[end].step} (last action {steps[end].action!r})"
        return Found(Failure(steps[end].step, "repeated_observation", detail), _window(steps, steps[end].step, size))
    progress = {o.step for o in outcomes if o.kind in ("achievement", "level") and o.value > 0}
    end = _runs(steps, lambda i, s: s.step not in progress, rules.idle_run)
    if end is not None:
        detail = f"{rules.idle_run} steps without an achievement or a level gained, up to step {steps[end].step}"
        return Found(Failure(steps[end].step, "unproductive_streak", detail), _window(steps, steps[end].step, rules.idle_run))
    return None


def named(steps: list[StepTaken], step: int, rules: Rules = Rules()) -> Found:
    """A failure the user names (`--failure STEP`): its decisions are those of the window before it."""
    return Found(Failure(step, "named", f"named by the user at step {step}"), _window(steps, step, rules.window))
