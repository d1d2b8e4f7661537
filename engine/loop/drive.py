"""The loop's driver: runs the planner's next step and records it on `loop/<id>`, until done.

Every stage calls the existing engine and is idempotent on resume by what that engine
already guarantees, so a restart after SIGKILL repeats nothing that was finished:
- rollouts, and every evaluation side, go through `play_seeds`, which reuses the ended
  episodes already stored for the same env, task, seed, structure, models and max steps
  (greedy decoding: the same episode again); an episode killed half-way is played again;
- scores are appended only for decisions this scorer version has not scored;
- datasets and model versions are content-addressed (`append_once`): the same selection
  over the same scores, the same dataset; the same dataset, base and config, the same version;
- loop 1 and promotion write their decisions on the structure and role streams: their
  stage's LoopStageStarted records those streams' heads, and a restart that finds the
  decision written after the mark takes it from the log instead of deciding again.
Appends to the loop stream name the head the driver last read: a second driver on the same
loop gets a conflict and stops, it cannot interleave stages.

On a Kafka bus (`Services`) the driver plays no episode and trains no model itself: its
sides are rollout requests for `automem worker`s (consumers.rollouts.Remote), its scores
stage waits for `automem consume scorer` to have scored every decision of its rollouts,
and its train stage waits for `automem consume trainer`'s version of its dataset. What
those services write is what the embedded stages would have written, so the stages after
them read the log the same way in both modes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import msgspec

from automem.engine.evaluation.paired import mean
from automem.engine.log import ConflictError, append_read_back
from automem.engine.log.port import EventLog
from automem.engine.loop.plan import (
    FINISH,
    START,
    Settings,
    Step,
    conflicts,
    next_step,
    produced,
)
from automem.schemas.errors import UserError
from automem.schemas.events import (
    LoopIterationFinished,
    LoopIterationStarted,
    LoopStageDone,
    LoopStageFailed,
    LoopStageStarted,
    LoopStarted,
    ModelVersionCreated,
    ModelVersionEvaluated,
    StructureAccepted,
    StructureEvaluated,
    StructureRejected,
)
from automem.schemas.streams import loop_stream, model_stream, structure_stream


class LoopResult(msgspec.Struct, kw_only=True):
    loop: str
    iterations: list[dict[str, object]]
    ran: list[str]  # the steps this start ran, "ITERATION:STAGE"


def _events(log: EventLog, stream: str) -> list[object]:
    return [r.event for r in log.read_stream(stream)]


class Services(msgspec.Struct, frozen=True, kw_only=True):
    """The driver on a bus: episodes, scores and training come from services; how long to wait for each."""

    wait_s: float = 3600.0
    poll_s: float = 1.0


class _Driver:
    def __init__(self, log: EventLog, data: Path, store: object, settings: Settings, loop: str,
                 reviewer: Callable[[], object], say: Callable[[str], None], concurrency: int,
                 services: Services | None) -> None:
        from automem.engine.evaluation import Local
        from automem.engine.rollout.bus import Remote

        self.log, self.data, self.store, self.s, self.loop = log, data, store, settings, loop
        self.stream = loop_stream(loop)
        self.reviewer, self.say, self.services = reviewer, say, services
        # rollout policies are loaded once for every stage (embedded), or workers play (bus)
        self.player = Local(concurrency, bar=True) if services is None else Remote(services.wait_s, services.poll_s)
        self.events: list[object] = _events(log, self.stream)

    def append(self, event: object) -> None:
        try:
            append_read_back(self.log, self.stream, len(self.events), [event])  # type: ignore[list-item]
        except ConflictError:
            raise UserError(f"loop {self.loop} was written by another start meanwhile: run one `automem loop run` "
                            "per loop at a time") from None
        self.events.append(event)

    # ------------------------------------------------------------------ helpers

    def request(self, structure: str, model: str):  # -> RunRequest
        from automem.engine.rollout.run import RunRequest

        return RunRequest(env=self.s.env, task=self.s.task, episodes=1, max_steps=self.s.max_steps, seed=0,
                          policy=self.s.policy, memory_policy=f"model:{model}" if model else None, structure=structure)

    def side(self, structure: str, model: str, seeds: tuple[int, ...]):  # -> Side
        from automem.engine.evaluation import play_seeds

        return play_seeds(self.log, self.data, self.request(structure, model), list(seeds), self.player)

    def wait(self, look: Callable[[], object | None], late: Callable[[], str]) -> object:
        from automem.engine.log.wait import wait_for

        assert self.services is not None
        return wait_for(look, self.services.wait_s, self.services.poll_s, late)

    def start_of(self, it: int) -> LoopIterationStarted:
        return next(e for e in self.events if isinstance(e, LoopIterationStarted) and e.iteration == it)

    def in_force(self, it: int) -> tuple[str, str]:
        """(structure, model) in force after the stages of iteration `it` done so far."""
        start, done = self.start_of(it), produced(self.events, it)
        structure = done["loop1"].outputs["structure"] if "loop1" in done else start.structure
        model = done["evaluate"].outputs["model"] if "evaluate" in done else start.model
        return structure, model

    # ------------------------------------------------------------------- stages

    def start(self, it: int) -> None:
        from automem.engine.models.registry import promoted
        from automem.engine.structure.registry import resolve_structure

        before = next((e for e in reversed(self.events) if isinstance(e, LoopIterationFinished)), None)
        if before is not None:
            structure, model = before.structure, before.model
        else:  # the first iteration starts from what the store has in force now
            structure = resolve_structure(self.log, self.s.env, self.s.structure, self.s.policy)[1]
            model = promoted(self.log) or ""
        self.append(LoopIterationStarted(iteration=it, structure=structure, model=model))

    def rollouts(self, it: int, _marks: dict[str, int]) -> LoopStageDone:
        start = self.start_of(it)
        side = self.side(start.structure, start.model, self.s.train_seeds)
        return LoopStageDone(iteration=it, stage="rollouts", episodes=tuple(side.episodes),
                             outputs={"structure": start.structure, "model": start.model},
                             figures={"reused": float(side.reused), "mean_progression": mean(side.progression)})

    def scores(self, it: int, _marks: dict[str, int]) -> LoopStageDone:
        from automem.engine.scoring import (
            Params,
            score_episodes,
            scorer_version,
            unscored,
        )

        episodes = list(produced(self.events, it)["rollouts"].episodes)
        if self.services is not None:  # `automem consume scorer` writes them: wait until it has
            counts: dict[str, tuple[int, int]] = {}  # episode -> (not written yet, in all)
            missing = [0]

            def look() -> int | None:
                for e in episodes:  # an episode scored completely is not read again
                    if counts.get(e, (1, 0))[0]:
                        counts[e] = unscored(self.log, e)
                missing[0] = sum(left for left, _ in counts.values())
                return None if missing[0] else sum(total for _, total in counts.values())

            decisions = self.wait(look, lambda: f"the scorer has not scored {missing[0]} decisions of this iteration's "
                                  f"{len(episodes)} rollouts within {self.services.wait_s:g} s: is `automem consume "  # type: ignore[union-attr]
                                  "scorer` running on this bus?")
            return LoopStageDone(iteration=it, stage="scores", episodes=tuple(episodes),
                                 outputs={"scorer": scorer_version(Params())}, figures={"decisions": float(decisions)})  # type: ignore[arg-type]
        report = score_episodes(self.log, episodes)
        if report.skipped:
            raise UserError(f"episodes could not be scored: {report.skipped}")
        return LoopStageDone(iteration=it, stage="scores", episodes=tuple(episodes), outputs={"scorer": report.scorer},
                             figures={"decisions": float(report.decisions), "pending": float(report.pending)})

    def loop1(self, it: int, marks: dict[str, int]) -> LoopStageDone:
        from automem.engine.evolve.loop import Budget, evolve

        parent = self.start_of(it).structure
        decided = self._loop1_decided(marks["structure"], parent)
        if decided is None:
            req = msgspec.structs.replace(self.request(parent, self.start_of(it).model),
                                          episodes=len(self.s.train_seeds))
            evolve(self.log, self.data, self.store, req, self.reviewer(), 1, list(self.s.train_seeds),  # type: ignore[arg-type]
                   list(self.s.select_seeds), list(self.s.heldout_seeds),
                   Budget(self.s.reviewer_turns, self.s.reviewer_tokens), self.player)
            decided = self._loop1_decided(marks["structure"], parent)
            if decided is None:
                raise UserError("loop 1 recorded no decision")
        return msgspec.structs.replace(decided, iteration=it)

    def _loop1_decided(self, mark: int, parent: str) -> LoopStageDone | None:
        """Loop 1's decision as the structure stream holds it after `mark`, or None when not yet made."""
        from automem.engine.evaluation.paired import interval

        evaluated: dict[tuple[str, str], StructureEvaluated] = {}
        for rec in self.log.read_stream(structure_stream(self.s.env), mark):
            e = rec.event
            if isinstance(e, StructureEvaluated):
                evaluated[e.version, e.purpose] = e
            elif isinstance(e, (StructureAccepted, StructureRejected)):
                accepted = isinstance(e, StructureAccepted)
                valid = not e.version.startswith("invalid-")
                outputs = {"structure": e.version if accepted else parent, "candidate": e.version if valid else "",
                           "parent": parent, "accepted": str(accepted).lower(), "valid": str(valid).lower(),
                           "reason": getattr(e, "reason", "") or "strict improvement on the selection seeds"}
                figures: dict[str, float] = {}
                for purpose, label in (("select", "select"), ("report", "heldout")):
                    cand, par = evaluated.get((e.version, purpose)), evaluated.get((parent, purpose))
                    if cand is None or par is None:
                        continue
                    diffs = [round(a - b, 6) for a, b in zip(cand.progression, par.progression)]
                    lo, hi = interval(diffs, f"{e.version}/{parent}/{purpose}")
                    figures |= {f"{label}.candidate": cand.mean_progression, f"{label}.parent": par.mean_progression,
                                f"{label}.difference": mean(diffs), f"{label}.low": lo, f"{label}.high": hi}
                return LoopStageDone(iteration=0, stage="loop1", outputs=outputs, figures=figures)
        return None

    def dataset(self, it: int, _marks: dict[str, int]) -> LoopStageDone:
        from automem.engine.dataset.build import build_dataset
        from automem.engine.dataset.select import Selection

        # Fixed in advance (as bench/loop2): every decision the rules did not penalise, since the
        # small structure's PLAN never reads memory and the default (above 0) may keep nothing;
        # only episodes on the training seeds, whatever else the store has scored.
        built = build_dataset(self.log, self.data, Selection(min_score=0.0, env=self.s.env,
                                                             seeds=tuple(self.s.train_seeds)))
        return LoopStageDone(iteration=it, stage="dataset",
                             outputs={"dataset": built.dataset, "sha256": built.sha256, "scorer": built.scorer},
                             figures={"examples": float(built.examples), "episodes": float(built.episodes)})

    def train(self, it: int, _marks: dict[str, int]) -> LoopStageDone:
        from automem.engine.training import TrainRequest, train

        dataset = produced(self.events, it)["dataset"].outputs["dataset"]
        if self.services is not None:
            return self.trained(it, dataset)
        config = None
        if self.s.config:
            suffix = ".json" if self.s.config.lstrip().startswith("{") else ".toml"
            path = self.data / "loop-configs" / f"{self.loop}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.s.config)
            config = str(path)
        # the answers are the rollout policy's: training the base on another model's answers is distillation
        result = train(self.log, self.data, TrainRequest(dataset=dataset, base=self.s.base, config=config,
                                                         max_steps=self.s.train_steps, device=self.s.device,
                                                         distill=self.s.policy != self.s.base))
        if result is None:
            raise UserError("training ran on several processes and this one does not write")
        return LoopStageDone(iteration=it, stage="train",
                             outputs={"model_version": result.model_version, "dataset": dataset,
                                      "new": str(result.new).lower()},
                             figures={"loss": result.loss, "steps": float(result.steps), "tokens": float(result.tokens)})

    def evaluate(self, it: int, marks: dict[str, int]) -> LoopStageDone:
        from automem.engine.evaluation import evaluate
        from automem.engine.evaluation.paired import interval
        from automem.engine.models.registry import promoted, promotions

        name = produced(self.events, it)["train"].outputs["model_version"]
        structure, incumbent = self.in_force(it)
        seeds = list(self.s.select_seeds)
        won = [p for p in promotions(self.log)[marks["promotions"]:] if p.name == name]
        if not won and promoted(self.log) != name:
            result = evaluate(self.log, self.data, name, self.s.env, self.s.task, seeds, self.s.max_steps,
                              policy=self.s.policy, structure=structure, promote=True, player=self.player)
            decision, won_now = result.decision, result.promoted
        elif won:  # promoted after this stage began, by a start killed before it recorded so
            decision, won_now = f"promoted: {won[-1].metric} beats {incumbent or 'the base model alone'} by {won[-1].delta:+g}", True
        else:  # the same dataset trained again gives the same version, promoted already
            decision, won_now = f"{name} is the promoted version already", False
        found = [r.event for r in self.log.read_stream(model_stream(name))
                 if isinstance(r.event, ModelVersionEvaluated) and list(r.event.seeds) == seeds
                 and r.event.baseline == incumbent]
        figures: dict[str, float] = {}
        if found:
            e = found[-1]
            diffs = [round(a - b, 6) for a, b in zip(e.progression, e.baseline_progression)]
            lo, hi = interval(diffs, f"{name}/{incumbent}/progression/{seeds}")
            figures = {"select.candidate": e.mean_progression, "select.incumbent": mean(list(e.baseline_progression)),
                       "select.difference": mean(diffs), "select.low": lo, "select.high": hi}
        return LoopStageDone(iteration=it, stage="evaluate",
                             outputs={"candidate": name, "incumbent": incumbent, "promoted": str(won_now).lower(),
                                      "model": name if won_now or promoted(self.log) == name else incumbent,
                                      "decision": decision},
                             figures=figures)

    def trained(self, it: int, dataset: str) -> LoopStageDone:
        """The version `automem consume trainer` made of the dataset (its training settings are the service's)."""
        from automem.engine.models.registry import created
        from automem.engine.training.base import names_base

        def look() -> list[ModelVersionCreated] | None:
            return [v for v in created(self.log) if v.dataset == dataset] or None

        found = self.wait(look, lambda: f"no model version of dataset {dataset} appeared within {self.services.wait_s:g} s: "  # type: ignore[union-attr]
                         "is `automem consume trainer` running on this bus (see its log for a dataset it passed over)?")
        assert isinstance(found, list)
        ours = [v for v in found if names_base(v.base, self.s.base)]
        if not ours:
            raise UserError(f"the trainer made {found[0].name} over base {found[0].base!r}, this loop's --base is "
                            f"{self.s.base!r}: start the trainer with AUTOMEM_BASE_MODEL set to the loop's base")
        made = ours[0]
        return LoopStageDone(iteration=it, stage="train", outputs={"model_version": made.name, "dataset": dataset,
                                                                   "new": "true"},
                             figures={"loss": made.loss, "steps": float(made.steps), "tokens": float(made.tokens)})

    def baseline(self, it: int, _marks: dict[str, int]) -> LoopStageDone:
        """Iteration 0: the held-out seeds under the structure and model the loop starts from."""
        start = self.start_of(it)
        return self.heldout(it, "baseline", start.structure, start.model)

    def report(self, it: int, _marks: dict[str, int]) -> LoopStageDone:
        return self.heldout(it, "report", *self.in_force(it))

    def heldout(self, it: int, stage: str, structure: str, model: str) -> LoopStageDone:
        from automem.engine.evaluation.paired import interval
        from automem.engine.evaluation.proficiency import mean_figures

        side = self.side(structure, model, self.s.heldout_seeds)
        label = f"{self.loop}/{it}/heldout/{structure}/{model}"
        lo, hi = interval(side.progression, label)
        figures = {"heldout.mean_progression": mean(side.progression), "heldout.low": lo, "heldout.high": hi}
        for name, value in mean_figures(side.figures).items():  # each proficiency figure with its interval too
            low, high = interval([f[name] for f in side.figures], f"{label}/{name}")
            figures |= {f"heldout.{name}": value, f"heldout.{name}.low": low, f"heldout.{name}.high": high}
        return LoopStageDone(iteration=it, stage=stage, episodes=tuple(side.episodes),
                             outputs={"structure": structure, "model": model}, figures=figures)

    def finish(self, it: int) -> None:
        done = produced(self.events, it)
        structure, model = self.in_force(it)
        self.append(LoopIterationFinished(
            iteration=it, structure=structure, model=model,
            accepted="loop1" in done and done["loop1"].outputs.get("accepted") == "true",
            promoted="evaluate" in done and done["evaluate"].outputs.get("promoted") == "true"))

    def marks(self) -> dict[str, int]:
        from automem.engine.models.registry import promotions

        return {"structure": self.log.head(structure_stream(self.s.env)), "promotions": len(promotions(self.log))}

    def step(self, step: Step) -> None:
        it, stage = step.iteration, step.stage
        if stage == START:
            self.start(it)
            self.say(f"iteration {it} started")
            return
        if stage == FINISH:
            self.finish(it)
            self.say(f"iteration {it} finished")
            return
        marks = step.marks
        if marks is None:
            marks = self.marks()
            self.append(LoopStageStarted(iteration=it, stage=stage, marks=marks))
        self.say(f"iteration {it}: {stage}...")
        from automem.engine.policy.base import ModelError

        began = time.monotonic()  # shown only, never recorded
        try:
            done = getattr(self, stage)(it, marks)
        except (UserError, ModelError, OSError, RuntimeError, MemoryError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            try:
                self.append(LoopStageFailed(iteration=it, stage=stage, reason=reason))
            except UserError:
                pass  # the log itself is gone (a broker down): the line below still says what failed
            raise UserError(f"loop {self.loop}: stage {stage} of iteration {it} failed: {reason} "
                            "(what was done stays done: the same command resumes here)") from None
        self.append(done)
        self.say(f"iteration {it}: {stage} done in {time.monotonic() - began:.1f} s {_brief(done)}")



def _brief(done: LoopStageDone) -> str:
    parts = [f"{len(done.episodes)} episodes"] if done.episodes else []
    parts += [f"{k} {v}" for k, v in done.outputs.items() if k not in ("reason", "decision") and v]
    return "(" + ", ".join(parts) + ")"


def open_loop(log: EventLog, settings: Settings, loop: str) -> list[object]:
    """The loop's events, after recording its settings on a first start; a start whose settings
    differ from the stored ones is refused, naming each difference."""
    stream = loop_stream(loop)
    events = _events(log, stream)
    if not events:
        try:
            log.append(stream, 0, [LoopStarted(loop=loop, settings=settings.flat())])
        except ConflictError:
            pass  # another start recorded it first: compared below
        events = _events(log, stream)
    first = events[0]
    if not isinstance(first, LoopStarted):
        raise UserError(f"loop/{loop} does not start with LoopStarted: it is not a loop's stream")
    differ = conflicts(first.settings, settings.flat())
    if differ:
        raise UserError(f"loop {loop} was started with other settings ({'; '.join(differ)}): start it with the same "
                        "settings, or give another --id")
    return events


def run_loop(log: EventLog, data: Path, store: object, settings: Settings, loop: str, iterations: int,
             reviewer: Callable[[], object], say: Callable[[str], None] = lambda _line: None, *,
             concurrency: int = 1, services: Services | None = None) -> LoopResult:
    """Run (or resume) `loop` up to `iterations` iterations; what the log says is done is not done again.
    Embedded, up to `concurrency` episodes play at a time in this process; with `services`, the
    bus's workers, scorer and trainer do that work and the driver waits for it."""
    settings.check()
    open_loop(log, settings, loop)
    driver = _Driver(log, data, store, settings, loop, reviewer, say, concurrency, services)
    ran = []
    while (step := next_step(driver.events, iterations)) is not None:
        driver.step(step)
        ran.append(f"{step.iteration}:{step.stage}")
    return LoopResult(loop=loop, iterations=table(driver.events), ran=ran)


def table(events: list[object]) -> list[dict[str, object]]:
    """One row per iteration begun: structure and accepted, model and promoted, selection and held-out figures."""
    rows = []
    for start in (e for e in events if isinstance(e, LoopIterationStarted)):
        it = start.iteration
        done = produced(events, it)
        finished = next((e for e in events if isinstance(e, LoopIterationFinished) and e.iteration == it), None)
        failed = [e for e in events if isinstance(e, LoopStageFailed) and e.iteration == it
                  and (e.iteration, e.stage) not in {(d.iteration, d.stage) for d in done.values()}]
        loop1, evaluate, report = done.get("loop1"), done.get("evaluate"), done.get("report")
        rows.append({
            "iteration": it, "status": "finished" if finished else (f"failed at {failed[-1].stage}" if failed else "running"),
            "stages": list(done),
            "structure": loop1.outputs["structure"] if loop1 else start.structure,
            "candidate_structure": loop1.outputs.get("candidate", "") if loop1 else "",
            "accepted": loop1.outputs.get("accepted") == "true" if loop1 else None,
            # the reviewer's proposal: invalid ones (a small model's usual answer) are counted, not hidden
            "proposal": ("valid" if loop1.outputs.get("valid") == "true" else "invalid") if loop1 else "",
            "decision": loop1.outputs.get("reason", "") if loop1 else "",
            "model": evaluate.outputs["model"] if evaluate else start.model,
            "candidate_model": done["train"].outputs["model_version"] if "train" in done else "",
            "promoted": evaluate.outputs.get("promoted") == "true" if evaluate else None,
            "dataset": done["dataset"].outputs["dataset"] if "dataset" in done else "",
            "loop1": dict(loop1.figures) if loop1 else {},
            "selection": dict(evaluate.figures) if evaluate else {},
            "heldout": dict(report.figures) if report else {},
            "baseline": dict(done["baseline"].figures) if "baseline" in done else {},
            "failure": failed[-1].reason if failed else "",
        })
    return rows


def loops(log: EventLog) -> list[str]:
    """The loop ids in the store, in the order they were started."""
    found = []
    for stream in log.streams("loop"):
        first = next(iter(log.read_stream(stream)), None)
        if first is not None and isinstance(first.event, LoopStarted):
            found.append((first.offset, first.event.loop))
    return [name for _, name in sorted(found)]


def status(log: EventLog, loop: str | None) -> dict[str, object]:
    """`automem loop status --json`: the loop's settings and its table (the loop started last, without an id)."""
    known = loops(log)
    if loop is None:
        if not known:
            raise UserError("no loop in this store: `automem loop run` starts one")
        loop = known[-1]
    events = _events(log, loop_stream(loop))
    if not events or not isinstance(events[0], LoopStarted):
        raise UserError(f"no loop {loop!r} in this store: known loops are {', '.join(known) or 'none'}")
    return {"loop": loop, "settings": events[0].settings, "iterations": table(events), "loops": known}
