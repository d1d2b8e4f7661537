"""A version against the incumbent on held-out seeds, paired by seed (the package
docstring says how a side is played, reused and promoted)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import msgspec

from automem.engine.envs import resolve_task
from automem.engine.episodes.read import read_episode, started
from automem.engine.episodes.summary import summarize
from automem.engine.evaluation.paired import interval, mean
from automem.engine.evaluation.proficiency import FIGURES, figures, mean_figures
from automem.engine.log.port import EventLog
from automem.engine.models.promotion import record_evaluation
from automem.engine.models.registry import promoted, resolve
from automem.engine.rollout.players import Local, Player
from automem.engine.rollout.request import RunRequest
from automem.schemas.errors import UserError
from automem.schemas.events import (
    DatasetBuilt,
    EpisodeEnded,
    ModelVersionEvaluated,
    ModelVersionPromoted,
)
from automem.schemas.streams import dataset_stream, role_stream

METRICS = ("progression", *FIGURES)


class Side(msgspec.Struct, kw_only=True):
    models: dict[str, str]  # as the episodes record them
    episodes: list[str]  # one per seed, in seed order
    progression: list[float]
    figures: list[dict[str, float]]
    reused: int = 0

    def metric(self, name: str) -> list[float | None]:
        """Per seed, oriented so that higher is better; None where the episode has no such figure."""
        if name == "progression":
            return list(self.progression)
        sign = 1.0 if FIGURES[name] else -1.0
        return [sign * f[name] if name in f else None for f in self.figures]


class EvalResult(msgspec.Struct, kw_only=True):
    """`automem eval --json`."""

    model: str
    baseline: str  # the incumbent version, "" for the base model alone
    env: str
    task: str
    seeds: list[int]
    max_steps: int
    candidate: SideSummary
    incumbent: SideSummary
    metric: str
    paired: list[float]  # per seed, candidate minus incumbent (higher is better)
    mean_difference: float
    interval: tuple[float, float]
    # every metric's paired comparison, oriented so that higher is better: {"mean", "interval"}
    differences: dict[str, dict[str, object]] = {}
    promoted: bool = False
    decision: str = ""


def training_seeds(log: EventLog, dataset: str) -> dict[str, set[int]]:
    """The seeds, per env, of the episodes a dataset was built from; refused when that cannot be
    known (the check that evaluation seeds are held out must never pass for want of data)."""
    built = next((r.event for r in log.read_stream(dataset_stream(dataset)) if isinstance(r.event, DatasetBuilt)), None)
    if built is None:
        raise UserError(f"dataset {dataset} is not in this log, so its training seeds are unknown: evaluate in the "
                        "store the version was trained in")
    out: dict[str, set[int]] = {}
    for episode in built.episodes:
        start = started(log, episode)
        if start is None:
            raise UserError(f"episode {episode} of dataset {dataset} is not in this log, so its seed is unknown: "
                            "evaluate in the store the version was trained in")
        out.setdefault(start.env, set()).add(start.seed)
    return out


ProbeFigure = Callable[[str], "float | None"]  # episode -> its probe accuracy (None: nothing to ask)


def play_seeds(log: EventLog, data: Path, req: RunRequest, seeds: list[int], player: Player | None = None,
               probe: ProbeFigure | None = None) -> Side:
    """The request's episodes on `seeds` (played by `player`, in this process by default), with
    their progression and proficiency figures (probe accuracy too, given `probe`)."""
    episodes, reused = (player or Local()).episodes(log, data, req, seeds)
    side = Side(models={}, episodes=episodes, progression=[], figures=[], reused=reused)
    for episode in side.episodes:
        record = read_episode(log, episode)
        if not side.models:
            side.models = dict(record.start.models)
        last = record.events[-1]
        side.progression.append(last.progression if isinstance(last, EpisodeEnded) else 0.0)
        measured = figures(record.events, record.limits)
        accuracy = probe(episode) if probe is not None else None
        side.figures.append(measured if accuracy is None else measured | {"probe_accuracy": accuracy})
    return side


def unclean(log: EventLog, side: Side) -> str | None:
    """Why a side's episodes cannot decide anything (one did not end cleanly), or None."""
    for episode in side.episodes:
        summary = summarize(log, episode)
        if summary.status != "ended" or summary.cause.startswith("model_error"):
            return f"episode {episode} did not finish cleanly ({summary.cause or summary.status})"
    return None


def _paired(a: Side, b: Side, metric: str, label: str) -> tuple[list[float], float, tuple[float, float]]:
    """Per-seed differences a - b (higher is better), their mean and bootstrap interval."""
    diffs = [round(x - y, 6) for x, y in zip(a.metric(metric), b.metric(metric)) if x is not None and y is not None]
    return diffs, mean(diffs), interval(diffs, label)


class SideSummary(msgspec.Struct, kw_only=True):
    """A side as reports show it (`automem eval --json`'s candidate and incumbent)."""

    models: dict[str, str]
    episodes: list[str]
    reused: int
    progression: list[float]  # per seed
    mean_progression: float
    figures: dict[str, float]  # each proficiency figure's mean


def side_summary(side: Side) -> SideSummary:
    return SideSummary(models=side.models, episodes=side.episodes, reused=side.reused, progression=side.progression,
                       mean_progression=mean(side.progression), figures=mean_figures(side.figures))


def evaluate(log: EventLog, data: Path, name: str, env: str, task: str | None, seeds: list[int], max_steps: int,
             policy: str = "local", structure: str = "auto", metric: str = "progression",
             promote: bool = False, player: Player | None = None, probe: ProbeFigure | None = None) -> EvalResult:
    """Evaluate version `name` against the incumbent on `seeds`; promote it if asked and it wins.
    `probe` adds each episode's probe accuracy (the same reader on both sides)."""
    if metric not in METRICS:
        raise UserError(f"unknown --metric {metric!r}: one of {', '.join(METRICS)}")
    task = resolve_task(env, task)
    created = resolve(log, name)
    name = created.name
    overlap = sorted(set(seeds) & training_seeds(log, created.dataset).get(env, set()))
    if overlap:
        raise UserError(f"seeds {', '.join(map(str, overlap))} of {env} were used by the episodes of {name}'s dataset "
                        f"{created.dataset}: evaluate on held-out seeds")
    history_head = log.head(role_stream("memory"))
    incumbent = promoted(log)
    if incumbent == name:
        raise UserError(f"{name} is already the promoted version: evaluate another version against it")
    base = RunRequest(env=env, task=task, episodes=len(seeds), max_steps=max_steps, seed=0, policy=policy,
                      structure=structure)
    player = player or Local()
    candidate = play_seeds(log, data, msgspec.structs.replace(base, memory_policy=f"model:{name}"), seeds, player,
                           probe)
    incumbent_side = play_seeds(log, data, msgspec.structs.replace(
        base, memory_policy=f"model:{incumbent}" if incumbent else None), seeds, player, probe)
    for label, side in (("candidate", candidate), ("incumbent", incumbent_side)):
        broken = unclean(log, side)
        if broken is not None:
            raise UserError(f"the {label}'s {broken}: the comparison is not evaluated; run it again")
    compared = {m: _paired(candidate, incumbent_side, m, f"{name}/{incumbent}/{m}/{seeds}") for m in METRICS}
    diffs, difference, span = compared[metric]
    result = EvalResult(model=name, baseline=incumbent or "", env=env, task=task, seeds=seeds, max_steps=max_steps,
                        candidate=side_summary(candidate), incumbent=side_summary(incumbent_side), metric=metric, paired=diffs,
                        mean_difference=difference, interval=span,
                        differences={m: {"mean": c[1], "interval": c[2]} for m, c in compared.items()})
    won = promote and difference > 0
    evaluated = ModelVersionEvaluated(
        name=name, seeds=tuple(seeds), mean_progression=mean(candidate.progression), env=env, task=task,
        max_steps=max_steps, episodes=tuple(candidate.episodes), baseline=incumbent or "",
        baseline_episodes=tuple(incumbent_side.episodes), progression=tuple(candidate.progression),
        baseline_progression=tuple(incumbent_side.progression), figures=mean_figures(candidate.figures),
        baseline_figures=mean_figures(incumbent_side.figures))
    promotion = ModelVersionPromoted(name=name, role="memory", env=env, metric=metric, delta=difference, interval=span,
                                     replaces=incumbent or "") if won else None
    record_evaluation(log, evaluated, promotion, history_head)
    result.promoted = won
    against = incumbent or "the base model alone"
    if not promote:
        result.decision = f"not asked to promote (mean paired difference in {metric} {difference:+g} against {against})"
    elif not won:
        result.decision = f"not promoted: {metric} does not beat {against} (mean paired difference {difference:+g})"
    else:
        result.decision = f"promoted: {metric} beats {against} by {difference:+g} on average over {len(seeds)} seeds"
    return result
