"""The loop's stages: one function per stage, found by name in `STAGES`, each returning its record.

Every stage calls the existing engine and is idempotent on resume by what that engine
already guarantees (see `drive`). A stage reads what the iteration's earlier stages
produced as records (`records.done`), never the events' string fields. The engine modules
are imported inside the stages: they bring torch and the environments, which `automem
loop status` and `report` do not need.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import msgspec

from automem.engine.dataset.build import build_dataset, selectable
from automem.engine.dataset.select import Selection
from automem.engine.evaluation import ProbeFigure, play_seeds
from automem.engine.evaluation import evaluate as evaluate_model
from automem.engine.evaluation.paired import interval, mean
from automem.engine.evaluation.proficiency import mean_figures
from automem.engine.evolve.loop import Budget, evolve, reject_invalid
from automem.engine.files import write_file
from automem.engine.log.port import EventLog
from automem.engine.log.wait import wait_for
from automem.engine.loop.collect import collect
from automem.engine.loop.plan import Settings, training_seeds
from automem.engine.loop.records import (
    Dataset,
    Done,
    Evaluated,
    Heldout,
    Interval,
    Loop1,
    Paired,
    Proposal,
    Rollouts,
    Scores,
    StageResult,
    Trained,
    done,
)
from automem.engine.models.registry import created, promoted, promotions
from automem.engine.policy.sampling import GREEDY, Sampling
from automem.engine.probes.figure import probe_figure
from automem.engine.rollout.request import RunRequest
from automem.engine.scoring import Params, score_episodes, scorer_version, unscored
from automem.engine.training import TrainRequest
from automem.engine.training import train as train_model
from automem.engine.training.base import names_base
from automem.engine.training.config import suffix_of
from automem.schemas.agent import MEMORY, AgentSpec, parse_label
from automem.schemas.errors import UserError
from automem.schemas.events import (
    LoopIterationStarted,
    LoopStageFailed,
    ModelVersionCreated,
    ModelVersionEvaluated,
    StructureAccepted,
    StructureEvaluated,
    StructureRejected,
)
from automem.schemas.ids import is_invalid_proposal
from automem.schemas.streams import model_stream, structure_stream

if TYPE_CHECKING:
    from automem.engine.evaluation.compare import Side
    from automem.engine.log.lmdb.log import LmdbLog
    from automem.engine.policy.base import Policy
    from automem.engine.rollout.players import Player
    from automem.engine.rollout.request import RunRequest

T = TypeVar("T")
Marks = dict[str, int]  # stream heads recorded when the stage began (LoopStageStarted)


class Services(msgspec.Struct, frozen=True, kw_only=True):
    """The driver on a bus: episodes, scores and training come from services; how long to wait for each."""

    wait_s: float = 3600.0
    poll_s: float = 1.0


class Context:
    """What every stage reads: the log, the loop's settings and events so far, and who plays episodes."""

    def __init__(self, log: EventLog, data: Path, store: LmdbLog | None, settings: Settings, loop: str,
                 reviewer: Callable[[], Policy], events: list[object], player: Player,
                 services: Services | None) -> None:
        self.log, self.data, self.store, self.s, self.loop = log, data, store, settings, loop
        self.reviewer, self.events, self.player, self.services = reviewer, events, player, services
        self._probe: ProbeFigure | None = None

    @property
    def probe(self) -> ProbeFigure | None:
        """The probe figure of an episode when the loop probes (the --policy reads), loaded once."""
        if self.s.probes and self._probe is None:
            self._probe = probe_figure(self.log, self.s.policy)
        return self._probe

    def request(self, structure: str, model: str, agent: AgentSpec = MEMORY, sampling: Sampling = GREEDY) -> RunRequest:
        return RunRequest(env=self.s.env, task=self.s.task, episodes=1, max_steps=self.s.max_steps, seed=0,
                          policy=self.s.policy, memory_policy=f"model:{model}" if model else None, structure=structure,
                          agent=agent, sampling=sampling)

    def side(self, structure: str, model: str, seeds: tuple[int, ...], agent: AgentSpec = MEMORY,
             sampling: Sampling = GREEDY) -> Side:
        return play_seeds(self.log, self.data, self.request(structure, model, agent, sampling), list(seeds),
                          self.player, self.probe)

    def wait(self, services: Services, look: Callable[[], T | None], late: Callable[[], str]) -> T:
        return wait_for(look, services.wait_s, services.poll_s, late)

    def start_of(self, it: int) -> LoopIterationStarted:
        return next(e for e in self.events if isinstance(e, LoopIterationStarted) and e.iteration == it)

    def done(self, it: int) -> Done:
        return done(self.events, it)

    def in_force(self, it: int) -> tuple[str, str]:
        """(structure, model) in force after the stages of iteration `it` done so far."""
        start, d = self.start_of(it), self.done(it)
        return (d.loop1.structure if d.loop1 else start.structure, d.evaluate.model if d.evaluate else start.model)


def _needs(record: T | None, stage: str) -> T:
    if record is None:
        raise UserError(f"the {stage} stage has no record in this iteration")
    return record


# ------------------------------------------------------------------------ stages


def rollouts(c: Context, it: int, _marks: Marks) -> Rollouts:
    """The iteration's training episodes, sampled: one round of training seeds, then (when the
    loop sets a minimum) more rounds on new seeds until the selection keeps enough decisions or
    the budget is spent; which of the two stopped it is recorded."""
    start, s = c.start_of(it), c.s

    def count(episodes: list[str], seeds: tuple[int, ...]) -> int:
        _scored(c, episodes)
        return selectable(c.log, _selection(c, seeds))

    got = collect(lambda seeds: c.side(start.structure, start.model, seeds, sampling=s.rollout_sampling),
                  lambda round_: training_seeds(s, c.loop, it, round_), s.rollout_budget or len(s.train_seeds),
                  s.min_examples, count)
    return Rollouts(structure=start.structure, model=start.model, episodes=got.episodes, reused=got.reused,
                    mean_progression=mean(list(got.progression)), seeds=got.seeds, selectable=got.selectable,
                    stopped=got.stopped)


def _selection(c: Context, seeds: tuple[int, ...]) -> Selection:
    # Fixed in advance (as bench/loop2): every decision the rules did not penalise, since with
    # v0-small (whose PLAN never read memory) the default (above 0) kept nothing; kept so loops
    # keep their datasets; only episodes on the iteration's training seeds. The paper's
    # default selection is bench learning-v2's scored arm.
    return Selection(min_score=0.0, env=c.s.env, seeds=seeds)


def scores(c: Context, it: int, _marks: Marks) -> Scores:
    return _scored(c, list(_needs(c.done(it).rollouts, "rollouts").episodes))


def _scored(c: Context, episodes: list[str]) -> Scores:
    """The episodes' decisions scored: by the embedded scorer, or (on a bus) by `automem consume
    scorer`, waited for."""
    services = c.services
    if services is not None:  # `automem consume scorer` writes them: wait until it has
        counts: dict[str, tuple[int, int]] = {}  # episode -> (not written yet, in all)
        missing = [0]

        def look() -> int | None:
            for e in episodes:  # an episode scored completely is not read again
                if counts.get(e, (1, 0))[0]:
                    counts[e] = unscored(c.log, e)
            missing[0] = sum(left for left, _ in counts.values())
            return None if missing[0] else sum(total for _, total in counts.values())

        decisions = c.wait(services, look, lambda: f"the scorer has not scored {missing[0]} decisions of this "
                           f"iteration's {len(episodes)} rollouts within {services.wait_s:g} s: is `automem consume "
                           "scorer` running on this bus?")
        return Scores(episodes=tuple(episodes), scorer=scorer_version(Params()), decisions=decisions)
    report = score_episodes(c.log, episodes)
    if report.skipped:
        raise UserError(f"episodes could not be scored: {report.skipped}")
    return Scores(episodes=tuple(episodes), scorer=report.scorer, decisions=report.decisions, pending=report.pending)


REPEATS = 2  # loop 1 crashing the same way this many times is recorded as a failed proposal


def loop1(c: Context, it: int, marks: Marks) -> Loop1:
    parent = c.start_of(it).structure
    decided = _loop1_decided(c, marks["structure"], parent)
    failed = [e.reason for e in c.events
              if isinstance(e, LoopStageFailed) and (e.iteration, e.stage) == (it, "loop1") and e.crash]
    if decided is None and len(failed) >= REPEATS and len(set(failed[-REPEATS:])) == 1:
        # the same crash again would be retried forever: the reviewer's turn is over, the parent stays
        # (a refusal of the world's, a reviewer server down, is retried: a later run may find it up)
        reject_invalid(c.log, c.s.env, f"loop 1 failed the same way {REPEATS} times: {failed[-1]}")
        decided = _loop1_decided(c, marks["structure"], parent)
    if decided is None:
        seeds = training_seeds(c.s, c.loop, it)
        req = msgspec.structs.replace(c.request(parent, c.start_of(it).model), episodes=len(seeds))
        evolve(c.log, c.data, c.store, req, c.reviewer(), 1, list(seeds), list(c.s.select_seeds),
               list(c.s.heldout_seeds), Budget(c.s.reviewer_turns, c.s.reviewer_tokens), c.player, c.probe,
               c.s.rollout_sampling)
        decided = _loop1_decided(c, marks["structure"], parent)
        if decided is None:
            raise UserError("loop 1 recorded no decision")
    return decided


def _loop1_decided(c: Context, mark: int, parent: str) -> Loop1 | None:
    """Loop 1's decision as the structure stream holds it after `mark`, or None when not yet made."""
    evaluated: dict[tuple[str, str], StructureEvaluated] = {}
    for rec in c.log.read_stream(structure_stream(c.s.env), mark):
        e = rec.event
        if isinstance(e, StructureEvaluated):
            evaluated[e.version, e.purpose] = e
        elif isinstance(e, (StructureAccepted, StructureRejected)):
            accepted = isinstance(e, StructureAccepted)
            valid = not is_invalid_proposal(e.version)
            compared: dict[str, Paired] = {}
            for purpose in ("select", "report"):
                cand, par = evaluated.get((e.version, purpose)), evaluated.get((parent, purpose))
                if cand is None or par is None:
                    continue
                diffs = [round(a - b, 6) for a, b in zip(cand.progression, par.progression)]
                lo, hi = interval(diffs, f"{e.version}/{parent}/{purpose}")
                compared[purpose] = Paired(cand.mean_progression, par.mean_progression, Interval(mean(diffs), lo, hi))
            reason = (e.reason if isinstance(e, StructureRejected) else "") or "strict improvement on the selection seeds"
            return Loop1(structure=e.version if accepted else parent, candidate=e.version if valid else "",
                         parent=parent, accepted=accepted, proposal=Proposal(valid, reason),
                         select=compared.get("select"), heldout=compared.get("report"))
    return None


def dataset(c: Context, it: int, _marks: Marks) -> Dataset:
    played = _needs(c.done(it).rollouts, "rollouts")
    built = build_dataset(c.log, c.data, _selection(c, played.seeds or training_seeds(c.s, c.loop, it)))
    if built.examples < c.s.min_examples and not c.s.allow_small:
        raise UserError(f"the rollouts ({len(played.episodes)} episodes, the budget of {c.s.rollout_budget or len(c.s.train_seeds)}) "
                        f"gave {built.examples} examples, under the minimum of {c.s.min_examples}: give a larger "
                        "--rollout-budget, longer episodes (--max-steps), or --allow-small to train on fewer "
                        "(each a new loop)")
    return Dataset(dataset=built.dataset, sha256=built.sha256, scorer=built.scorer, examples=built.examples,
                   episodes=built.episodes)


def train(c: Context, it: int, _marks: Marks) -> Trained:
    data = _needs(c.done(it).dataset, "dataset").dataset
    if c.services is not None:
        return _trained(c, c.services, data)
    config = None
    if c.s.config:
        path = c.data / "loop-configs" / f"{c.loop}{suffix_of(c.s.config)}"
        write_file(path, c.s.config, "the loop's training config")
        config = str(path)
    # the answers are the rollout policy's: training the base on another model's answers is distillation
    result = train_model(c.log, c.data, TrainRequest(dataset=data, base=c.s.base, config=config,
                                                     max_steps=c.s.train_steps, device=c.s.device,
                                                     distill=c.s.policy != c.s.base))
    if result is None:
        raise UserError("training ran on several processes and this one does not write")
    return Trained(model_version=result.model_version, dataset=data, new=result.new, loss=result.loss,
                   steps=result.steps, tokens=result.tokens)


def _trained(c: Context, services: Services, dataset: str) -> Trained:
    """The version `automem consume trainer` made of the dataset (its training settings are the service's)."""
    def look() -> list[ModelVersionCreated] | None:
        return [v for v in created(c.log) if v.dataset == dataset] or None

    found = c.wait(services, look, lambda: f"no model version of dataset {dataset} appeared within "
                   f"{services.wait_s:g} s: is `automem consume trainer` running on this bus (see its log for a "
                   "dataset it passed over)?")
    ours = [v for v in found if names_base(v.base, c.s.base)]
    if not ours:
        raise UserError(f"the trainer made {found[0].name} over base {found[0].base!r}, this loop's --base is "
                        f"{c.s.base!r}: start the trainer with AUTOMEM_BASE_MODEL set to the loop's base")
    made = ours[0]
    return Trained(model_version=made.name, dataset=dataset, new=True, loss=made.loss, steps=made.steps,
                   tokens=made.tokens)


def evaluate(c: Context, it: int, marks: Marks) -> Evaluated:
    name = _needs(c.done(it).train, "train").model_version
    structure, incumbent = c.in_force(it)
    seeds = list(c.s.select_seeds)
    won = [p for p in promotions(c.log)[marks["promotions"]:] if p.name == name]
    if not won and promoted(c.log) != name:
        result = evaluate_model(c.log, c.data, name, c.s.env, c.s.task, seeds, c.s.max_steps, policy=c.s.policy,
                                structure=structure, promote=True, player=c.player, probe=c.probe)
        decision, won_now = result.decision, result.promoted
    elif won:  # promoted after this stage began, by a start killed before it recorded so
        decision, won_now = f"promoted: {won[-1].metric} beats {incumbent or 'the base model alone'} by {won[-1].delta:+g}", True
    else:  # the same dataset trained again gives the same version, promoted already
        decision, won_now = f"{name} is the promoted version already", False
    found = [r.event for r in c.log.read_stream(model_stream(name))
             if isinstance(r.event, ModelVersionEvaluated) and list(r.event.seeds) == seeds
             and r.event.baseline == incumbent]
    select = None
    if found:
        e = found[-1]
        diffs = [round(a - b, 6) for a, b in zip(e.progression, e.baseline_progression)]
        lo, hi = interval(diffs, f"{name}/{incumbent}/progression/{seeds}")
        select = Paired(e.mean_progression, mean(list(e.baseline_progression)), Interval(mean(diffs), lo, hi))
    return Evaluated(candidate=name, incumbent=incumbent, promoted=won_now,
                     model=name if won_now or promoted(c.log) == name else incumbent, decision=decision, select=select)


def baseline(c: Context, it: int, _marks: Marks) -> Heldout:
    """Iteration 0: the held-out seeds under the structure and model the loop starts from."""
    start = c.start_of(it)
    return _heldout(c, it, start.structure, start.model)


def compare(c: Context, it: int, _marks: Marks) -> Heldout:
    """Iteration 0's comparison arm: the held-out seeds played by a baseline agent (no memory,
    the same action model), so every loop figure has the no-memory figure beside it."""
    return _heldout(c, it, c.start_of(it).structure, "", parse_label(c.s.compare))


def report(c: Context, it: int, _marks: Marks) -> Heldout:
    return _heldout(c, it, *c.in_force(it))


def _heldout(c: Context, it: int, structure: str, model: str, agent: AgentSpec = MEMORY) -> Heldout:
    side = c.side(structure, model, c.s.heldout_seeds, agent)
    label = f"{c.loop}/{it}/heldout/{structure}/{model}" + ("" if agent.has_memory else f"/{agent.label()}")
    figures: dict[str, Interval | float] = {}
    # each proficiency figure with its interval too; memory figures do not apply to a baseline (never 0),
    # except probe accuracy, which for a baseline is the control's (the same reader without memory)
    for name, value in mean_figures(side.figures).items():
        if not agent.has_memory and name != "probe_accuracy":
            continue
        figures[name] = Interval(value, *interval([f[name] for f in side.figures if name in f], f"{label}/{name}"))
    return Heldout(structure=structure, model=model, episodes=tuple(side.episodes),
                   progression=Interval(mean(side.progression), *interval(side.progression, label)), figures=figures,
                   agent="" if agent.has_memory else agent.label())


Stage = Callable[[Context, int, Marks], StageResult]
STAGES: dict[str, Stage] = {"baseline": baseline, "compare": compare, "rollouts": rollouts, "scores": scores,
                            "loop1": loop1, "dataset": dataset, "train": train, "evaluate": evaluate, "report": report}
