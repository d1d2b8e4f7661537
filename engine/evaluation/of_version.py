"""`automem eval`'s whole job: evaluate a stored model version. The version is looked up with
the store opened read-only; only then is it opened for writing (episodes, the evaluation, a
promotion), so naming a version that does not exist leaves no trace."""

from __future__ import annotations

from typing import Callable

from automem.engine.evaluation.compare import EvalResult, ProbeFigure, evaluate
from automem.engine.log import local_folder, open_log
from automem.engine.log.port import EventLog
from automem.engine.models.registry import resolve


def evaluate_version(bus: str | None, data: str | None, model: str, env: str, task: str | None, seeds: list[int],
                     max_steps: int, policy: str, structure: str, metric: str, promote: bool,
                     probes: Callable[[EventLog], ProbeFigure] | None = None) -> EvalResult:
    """`evaluate` on the store at bus/data, once `model` is known to be one of its versions;
    `probes(log)` gives the probe figure of an episode of that log."""
    with open_log(bus, data, create=False) as log:
        resolve(log, model)
    with open_log(bus, data) as log:
        return evaluate(log, local_folder(bus, data), model, env, task, seeds, max_steps, policy, structure,
                        metric, promote, probe=probes(log) if probes is not None else None)
