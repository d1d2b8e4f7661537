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
sides are rollout requests for `automem worker`s (rollout.players.Remote), its scores
stage waits for `automem consume scorer` to have scored every decision of its rollouts,
and its train stage waits for `automem consume trainer`'s version of its dataset. What
those services write is what the embedded stages would have written, so the stages after
them read the log the same way in both modes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import msgspec

from automem.engine.files import room
from automem.engine.log import ConflictError, append_read_back
from automem.engine.log.port import EventLog
from automem.engine.loop.plan import FINISH, START, Settings, Step, conflicts, next_step
from automem.engine.loop.records import brief, encode
from automem.engine.loop.stages import STAGES, Context, Marks, Services
from automem.engine.loop.table import Row, loop_events, table
from automem.engine.models.registry import promoted, promotions
from automem.engine.models.versions import MODELS
from automem.engine.policy.base import ModelError
from automem.engine.rollout.players import Local, Remote
from automem.engine.structure.lookup import find_structure
from automem.engine.structure.registry import resolve_structure
from automem.schemas.errors import UserError
from automem.schemas.events import (
    AnyEvent,
    LoopIterationFinished,
    LoopIterationStarted,
    LoopStageFailed,
    LoopStageStarted,
    LoopStarted,
)
from automem.schemas.streams import loop_stream, structure_stream

if TYPE_CHECKING:
    from automem.engine.log.lmdb.log import LmdbLog
    from automem.engine.policy.base import Policy


class LoopResult(msgspec.Struct, kw_only=True):
    loop: str
    iterations: list[Row]
    ran: list[str]  # the steps this start ran, "ITERATION:STAGE"


class _Driver:
    def __init__(self, log: EventLog, data: Path, store: LmdbLog | None, settings: Settings, loop: str,
                 reviewer: Callable[[], Policy], say: Callable[[str], None], concurrency: int,
                 services: Services | None) -> None:
        self.log, self.s, self.loop, self.say = log, settings, loop, say
        self.stream = loop_stream(loop)
        self.events: list[object] = loop_events(log, loop)
        # rollout policies are loaded once for every stage (embedded), or workers play (bus)
        player = Local(concurrency, bar=True) if services is None else Remote(services.wait_s, services.poll_s)
        self.context = Context(log, data, store, settings, loop, reviewer, self.events, player, services)

    def append(self, event: AnyEvent) -> None:
        try:
            append_read_back(self.log, self.stream, len(self.events), [event])
        except ConflictError:
            raise UserError(f"loop {self.loop} was written by another start meanwhile: run one `automem loop run` "
                            "per loop at a time") from None
        self.events.append(event)

    def start(self, it: int) -> None:
        before = next((e for e in reversed(self.events) if isinstance(e, LoopIterationFinished)), None)
        if before is not None:
            structure, model = before.structure, before.model
        else:  # the first iteration starts from what the store has in force now
            structure = resolve_structure(self.log, self.s.env, self.s.structure, self.s.policy)[1]
            model = promoted(self.log) or ""
        self.append(LoopIterationStarted(iteration=it, structure=structure, model=model))

    def finish(self, it: int) -> None:
        d = self.context.done(it)
        structure, model = self.context.in_force(it)
        self.append(LoopIterationFinished(iteration=it, structure=structure, model=model,
                                          accepted=d.loop1 is not None and d.loop1.accepted,
                                          promoted=d.evaluate is not None and d.evaluate.promoted))

    def marks(self) -> Marks:
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
        began = time.monotonic()  # shown only, never recorded
        try:
            result = STAGES[stage](self.context, it, marks)
        except (UserError, ModelError, OSError, RuntimeError, MemoryError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            crash = type(exc).__name__ if isinstance(exc, RuntimeError) else ""  # the rest are the world's refusals
            try:
                self.append(LoopStageFailed(iteration=it, stage=stage, reason=reason, crash=crash))
            except UserError:
                pass  # the log itself is gone (a broker down): the line below still says what failed
            raise UserError(f"loop {self.loop}: stage {stage} of iteration {it} failed: {reason} "
                            "(what was done stays done: the same command resumes here)") from None
        self.append(encode(it, stage, result))
        self.say(f"iteration {it}: {stage} done in {time.monotonic() - began:.1f} s {brief(result)}")


def open_loop(log: EventLog, settings: Settings, loop: str) -> list[object]:
    """The loop's events, after recording its settings on a first start; a start whose settings
    differ from the stored ones is refused, naming each difference."""
    events = loop_events(log, loop)
    if not events:
        try:
            log.append(loop_stream(loop), 0, [LoopStarted(loop=loop, settings=settings.flat())])
        except ConflictError:
            pass  # another start recorded it first: compared below
        events = loop_events(log, loop)
    first = events[0]
    if not isinstance(first, LoopStarted):
        raise UserError(f"{loop_stream(loop)} does not start with LoopStarted: it is not a loop's stream")
    differ = conflicts(first.settings, settings.flat())
    if differ:
        raise UserError(f"loop {loop} was started with other settings ({'; '.join(differ)}): start it with the same "
                        "settings, or give another --id")
    return events


def check_startable(log: EventLog, data: Path, settings: Settings, services: Services | None) -> None:
    """What a later stage would refuse (an unknown structure; a training device this machine
    lacks, a base that is no model, a bad trainer setting, folders that cannot be written),
    refused before the loop is recorded: a start that cannot finish leaves no loop."""
    if settings.structure != "auto":
        find_structure(log, settings.env, settings.structure)
    if 2 in settings.loops and services is None:  # on a bus the trainer service has its own base, device, folders
        from automem.engine.training import config as cfg
        from automem.engine.training.base import resolve_base
        from automem.engine.training.trainer import pick_device

        pick_device(settings.device)
        base = resolve_base(settings.base)
        overrides = cfg.parse_overrides(settings.config, cfg.suffix_of(settings.config) == ".toml") \
            if settings.config else {}
        cfg.resolve(base.parameters, overrides, settings.train_steps)
        for folder, what in (("datasets", "the loop's datasets"), (MODELS, "the loop's model versions")):
            room(data / folder, what)


def run_loop(log: EventLog, data: Path, store: LmdbLog | None, settings: Settings, loop: str, iterations: int,
             reviewer: Callable[[], Policy], say: Callable[[str], None] = lambda _line: None, *,
             concurrency: int = 1, services: Services | None = None) -> LoopResult:
    """Run (or resume) `loop` up to `iterations` iterations; what the log says is done is not done again.
    Embedded, up to `concurrency` episodes play at a time in this process; with `services`, the
    bus's workers, scorer and trainer do that work and the driver waits for it."""
    settings.check()
    check_startable(log, data, settings, services)
    open_loop(log, settings, loop)
    driver = _Driver(log, data, store, settings, loop, reviewer, say, concurrency, services)
    ran = []
    while (step := next_step(driver.events, iterations)) is not None:
        driver.step(step)
        ran.append(f"{step.iteration}:{step.stage}")
    return LoopResult(loop=loop, iterations=table(driver.events), ran=ran)
