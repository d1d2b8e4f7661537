"""The loop's planner: pure functions from its recorded events to what comes next.

A loop is identified by its settings (a content hash, or a name given with `--id`); its
stream `loop/<id>` holds LoopStarted (the settings), then per iteration
LoopIterationStarted, per stage LoopStageStarted and LoopStageDone (or LoopStageFailed),
and LoopIterationFinished. The next step is the first iteration not finished, and in it
the first stage without a LoopStageDone. Nothing here touches the log.
"""

from __future__ import annotations

import hashlib
import json
import re

import msgspec

from automem.engine.policy.sampling import Sampling, check_sampling
from automem.schemas.agent import parse_label
from automem.schemas.errors import UserError
from automem.schemas.events import (
    LoopIterationFinished,
    LoopIterationStarted,
    LoopStageDone,
    LoopStageStarted,
    LoopStarted,
)

START, FINISH = "start", "finish"  # the steps around an iteration's stages
# settings added after loops were stored: absent from LoopStarted while unused, so those loops keep their ids
LATER_SETTINGS = ("compare", "probes", "temperature", "top_p", "fresh_seeds", "min_examples", "rollout_budget",
                  "allow_small")
LOOP1 = ("loop1",)  # proposal, validation, evaluation on the selection seeds, acceptance
LOOP2 = ("dataset", "train", "evaluate")  # dataset, LoRA training, evaluation against the incumbent and promotion
MAX_BUDGET = 100_000  # rollout episodes per iteration
DERIVED_SEEDS = 1 << 31  # derived training seeds lie below this: short enough to read in an episode id
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that decides a loop's results. The number of iterations is not part of it:
    starting the same loop with more iterations carries on where it stopped."""

    env: str
    task: str
    train_seeds: tuple[int, ...]
    select_seeds: tuple[int, ...]
    heldout_seeds: tuple[int, ...]
    max_steps: int
    loops: tuple[int, ...] = (1, 2)
    policy: str = "local"
    structure: str = "auto"  # where the first iteration starts (auto: the one accepted last for this model class)
    reviewer: str = ""
    reviewer_turns: int = 6
    reviewer_tokens: int = 4096
    base: str = "local"
    train_steps: int | None = None
    config: str = ""  # the trainer config file's contents ("" : the size's defaults)
    device: str = "auto"
    compare: str = ""  # a baseline agent played on the held-out seeds beside the loop (history-16, none)
    probes: bool = False  # memory probes on every evaluation side: probe_accuracy among the figures
    # Training rollouts' sampling (None: greedy, as loops before sampling) and whether each
    # iteration after the first plays new training seeds derived from the loop and the iteration.
    temperature: float | None = None
    top_p: float | None = None
    fresh_seeds: bool = False
    # Loop 2's data: rollouts go on (more training seeds) until the selection keeps `min_examples`
    # decisions or `rollout_budget` episodes are played (0: one round of the training seeds, no
    # minimum); a dataset under the minimum is trained on only with `allow_small`.
    min_examples: int = 0
    rollout_budget: int = 0
    allow_small: bool = False

    @property
    def rollout_sampling(self) -> Sampling:
        """How the training rollouts sample; evaluation is always greedy."""
        return Sampling(self.temperature or 0.0, 1.0 if self.top_p is None else self.top_p)

    def check(self) -> Settings:
        sets = {"training": set(self.train_seeds), "selection": set(self.select_seeds),
                "held-out": set(self.heldout_seeds)}
        for a, b in (("training", "selection"), ("training", "held-out"), ("selection", "held-out")):
            if sets[a] & sets[b]:
                raise UserError(f"the {a} and {b} seeds overlap ({', '.join(map(str, sorted(sets[a] & sets[b])))}): "
                                "keep training, selection and held-out seeds apart")
        if not self.loops or not set(self.loops) <= {1, 2}:
            raise UserError(f"--loops is 1, 2 or 1,2; got {','.join(map(str, self.loops)) or 'nothing'}")
        if self.compare:
            arm = parse_label(self.compare)
            if arm.has_memory:
                raise UserError(f"--compare {self.compare}: compare with an agent without memory (history-16, none); "
                                "the loop's own baseline is the memory agent it starts from")
            if arm.label() != self.compare:
                raise UserError(f"--compare {self.compare}: write it {arm.label()}")
        if self.temperature is not None or self.top_p is not None:
            check_sampling(self.temperature, self.top_p)
        if self.min_examples < 0 or not 0 <= self.rollout_budget <= MAX_BUDGET:
            raise UserError(f"--min-examples must be 0 or more and --rollout-budget 0 to {MAX_BUDGET} episodes")
        if self.rollout_budget and self.rollout_budget < len(self.train_seeds):
            raise UserError(f"--rollout-budget {self.rollout_budget} is under the {len(self.train_seeds)} training "
                            "seeds of one round: give at least that many episodes")
        if 1 in self.loops and not self.reviewer:
            raise UserError("loop 1 needs a reviewer: pass --reviewer SPEC (or --loops 2)")
        return self

    def flat(self) -> dict[str, str]:
        """As LoopStarted records them: one string per field, compared field by field."""
        out = {}
        for name, value in msgspec.structs.asdict(self).items():
            if name in LATER_SETTINGS and value in ("", False, None, 0):
                continue  # absent when unused: loops started before them keep their ids
            out[name] = ",".join(map(str, value)) if isinstance(value, tuple) else "" if value is None else str(value)
        return out


def training_seeds(settings: Settings, loop: str, iteration: int, round_: int = 0) -> tuple[int, ...]:
    """The training seeds of one round of an iteration's rollouts: the given ones first (every
    iteration's first round, or only the first iteration's with fresh seeds), then new ones,
    as many per round, a pure function of (loop, iteration, round) that is never a selection
    or held-out seed nor repeats within the iteration, so a resumed loop plays the same ones."""
    n = len(settings.train_seeds)
    given_first = not settings.fresh_seeds or iteration == 1
    if round_ == 0 and given_first:
        return settings.train_seeds
    chunk = round_ - 1 if given_first else round_
    taken = set(settings.select_seeds) | set(settings.heldout_seeds) | set(settings.train_seeds)
    stream: list[int] = []
    attempt = 0
    while len(stream) < (chunk + 1) * n:
        place = f"{loop}/train/{iteration}/{attempt}".encode()
        seed = int.from_bytes(hashlib.blake2b(place, digest_size=8).digest(), "big") % DERIVED_SEEDS
        attempt += 1
        if seed not in taken:
            taken.add(seed)
            stream.append(seed)
    return tuple(stream[chunk * n :])


def loop_id(settings: Settings) -> str:
    """The id a loop gets from its settings: the same settings, the same loop."""
    text = json.dumps(settings.flat(), sort_keys=True)
    return f"{settings.env}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def check_id(name: str) -> str:
    if not _ID.fullmatch(name):
        raise UserError(f"bad --id {name!r}: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def conflicts(stored: dict[str, str], given: dict[str, str]) -> list[str]:
    """The settings that differ, as `name: stored 'x', now 'y'`."""
    return [f"{k}: stored {stored.get(k, '')!r}, now {given.get(k, '')!r}"
            for k in sorted(set(stored) | set(given)) if stored.get(k, "") != given.get(k, "")]


def stages(loops: tuple[int, ...], iteration: int, compare: bool = False) -> tuple[str, ...]:
    """One iteration's stages in order, for the loops that run; the first iteration begins with
    the baseline (the held-out seeds under the starting structure and model: iteration 0) and,
    when asked, the comparison agent on the same seeds."""
    first = ("baseline", *(("compare",) if compare else ())) if iteration == 1 else ()
    return (*first, "rollouts", "scores", *(LOOP1 if 1 in loops else ()), *(LOOP2 if 2 in loops else ()), "report")


class Step(msgspec.Struct, frozen=True, kw_only=True):
    iteration: int
    stage: str  # START, a stage, or FINISH
    marks: dict[str, int] | None = None  # the stage's started marker, when an earlier start began it


def next_step(events: list[object], iterations: int) -> Step | None:
    """What to do next, or None when `iterations` iterations are finished."""
    started = next((e for e in events if isinstance(e, LoopStarted)), None)
    if started is None:
        raise UserError("this loop's stream has no LoopStarted: it is not a loop")
    loops = tuple(int(x) for x in started.settings.get("loops", "1,2").split(","))
    begun = {e.iteration for e in events if isinstance(e, LoopIterationStarted)}
    finished = {e.iteration for e in events if isinstance(e, LoopIterationFinished)}
    done = {(e.iteration, e.stage) for e in events if isinstance(e, LoopStageDone)}
    marks = {(e.iteration, e.stage): e.marks for e in events if isinstance(e, LoopStageStarted)}
    for it in range(1, iterations + 1):
        if it in finished:
            continue
        if it not in begun:
            return Step(iteration=it, stage=START)
        for stage in stages(loops, it, bool(started.settings.get("compare"))):
            if (it, stage) not in done:
                return Step(iteration=it, stage=stage, marks=marks.get((it, stage)))
        return Step(iteration=it, stage=FINISH)
    return None
