"""The outcome signal: one number per step from what the log recorded. Pure.

Step t's signal is what its action led to: the env's reward, achievements and level gains,
minus damage, death, items lost, an invalid or missing action, and a step that changed
nothing (the audit's failure rules, counted per step rather than first-fired).
"""

from __future__ import annotations

from automem.engine.audit.failure import items_lost, scene
from automem.engine.scoring.params import Params
from automem.schemas.events import OutcomeObserved, StepTaken


def step_signal(steps: list[StepTaken], outcomes: list[OutcomeObserved], p: Params) -> dict[int, float]:
    """Signal per step number, in step order."""
    r = {s.step: p.reward * s.reward - (0.0 if s.valid else p.invalid) for s in steps}
    for prev, s in zip(steps, steps[1:]):
        if scene(s) == scene(prev):
            r[s.step] -= p.stuck
    for s, _item, before, after in items_lost(steps):
        r[s.step] -= p.resource_lost * (before - after)
    for o in outcomes:
        if o.step not in r:
            continue  # an outcome of a step never taken (a crashed run)
        if o.kind == "achievement":
            r[o.step] += p.achievement
        elif o.kind == "level" and o.value > 0:
            r[o.step] += p.level * o.value
        elif o.kind == "damage":
            r[o.step] -= p.damage * o.value
        elif o.kind == "death":
            r[o.step] -= p.death
    return r


def advantages(signal: dict[int, float], last: int, p: Params) -> dict[int, float]:
    """Per step t: the discounted signal over the horizon from t (cut at step `last`), minus
    the mean of that return over the `baseline_window` steps up to t. The baseline is the
    episode's own and causal, so a good episode does not make every decision in it good,
    and step t's value is final once step t + horizon - 1 is known."""
    steps = sorted(s for s in signal if s <= last)
    returns: dict[int, float] = {}
    for t in steps:
        total, weight = 0.0, 1.0
        for k in range(p.horizon):
            if t + k > last:
                break
            total += weight * signal.get(t + k, 0.0)
            weight *= p.gamma
        returns[t] = total
    out: dict[int, float] = {}
    window: list[float] = []
    running = 0.0
    for t in steps:
        window.append(returns[t])
        running += returns[t]
        if len(window) > p.baseline_window:
            running -= window.pop(0)
        out[t] = returns[t] - running / len(window)
    return out
