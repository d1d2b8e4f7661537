"""A probe run over one recorded episode: generate, ask both arms, record, sum up.

Probes are asked as after the chosen steps; each is asked twice, with memory as it was
then (rebuilt from the episode's write-ops and checked against the digest the step
recorded) and with empty memory (the control). Answers already in the probe stream for
the same settings are reused, so a run that failed half way resumes where it stopped; a
reader's failure is recorded as a failed probe and the others go on.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Generator, Iterable, Sequence

import msgspec

from automem.engine.agent.episode import Call
from automem.engine.envs.common import derive_seed
from automem.engine.episodes.read import EpisodeRecord, read_episode
from automem.engine.log.port import EventLog, append_at_head
from automem.engine.memory import EMPTY, MemoryState, apply
from automem.engine.memory.snapshot import REPLAY_LIMITS, is_write
from automem.engine.policy.base import Completion, ModelError, Policy
from automem.engine.policy.convert import MODEL_ID
from automem.engine.probes import ask
from automem.engine.probes.check import MAX_ANSWER, correct
from automem.engine.probes.kinds import KINDS, Probe, kinds_of, probes_at
from automem.engine.probes.stats import Accuracy, accuracy
from automem.engine.rollout.drive import drive
from automem.engine.structure.lookup import find_structure
from automem.schemas.errors import UserError
from automem.schemas.events import AnyEvent, EnvFacts, EpisodeStarted, ProbeAnswered, ProbeAsked, StepTaken
from automem.schemas.streams import probe_stream
from automem.schemas.structure import Structure, agent_limits

GENERATION = 1  # bump when generators or templates change: runs then get new ids
ARMS = ("memory", "control")
MAX_TURNS = 8


class ProbeSettings(msgspec.Struct, frozen=True):
    """Everything a probe run's questions and answers depend on besides the reader's answers."""

    episode: str
    reader: str  # the reader's model name
    seed: int
    kinds: tuple[str, ...]
    steps: tuple[int, ...]
    turns: int
    generation: int = GENERATION

    @property
    def run(self) -> str:
        return "pr-" + hashlib.blake2b(msgspec.json.encode(self), digest_size=8).hexdigest()


class Asked(msgspec.Struct, frozen=True):
    """One probe in one arm and what came of it."""

    index: int
    arm: str
    kind: str
    step: int
    about: int
    question: str
    key: str
    answer: str
    correct: bool
    error: str | None = None


class KindFigures(msgspec.Struct, frozen=True):
    kind: str
    memory: Accuracy
    control: Accuracy
    gap: Accuracy  # memory minus control, paired by probe


class ProbeRun(msgspec.Struct, frozen=True):
    run: str
    episode: str
    env: str
    agent: str
    reader: str
    seed: int
    steps: tuple[int, ...]
    kinds: tuple[str, ...]
    overall: KindFigures
    per_kind: list[KindFigures]
    failed: int
    reused: int
    skipped: list[str]  # steps with nothing to ask, and why
    probes: list[Asked]


def default_reader(start: EpisodeStarted) -> str:
    """The policy spec of the episode's own action model, where its name says which it is."""
    name = start.models.get("agent", "")
    if name in ("random", MODEL_ID):
        return "random" if name == "random" else "local"
    raise UserError(f"the episode was played by {name!r}: name the reader with --reader SPEC "
                    "(e.g. openai:MODEL@URL, or local for the embedded model)")


def episode_structure(log: EventLog, record: EpisodeRecord) -> Structure:
    """The structure the episode was played under (a seed such as v0 when not stored): its read
    commands are the reader's lookups, its limits theirs, when asked and when credited."""
    return record.structure or find_structure(log, record.start.env, record.start.structure)


def check_kinds(env: str, kinds: Sequence[str] | None) -> tuple[str, ...]:
    """The kinds asked: all of the game's by default; one it does not have is a one-line error."""
    have = kinds_of(env)
    if not kinds:
        return have
    wrong = [k for k in kinds if k not in have]
    if wrong:
        raise UserError(f"--kinds {','.join(wrong)}: {env} has the probe kinds {', '.join(have)}")
    return tuple(dict.fromkeys(kinds))


def check_steps(length: int, at: Sequence[int] | None, every: int | None) -> tuple[int, ...]:
    """Steps to ask at: `at`, or every K-th step (default: every 10th), all inside the episode."""
    if length == 0:
        raise UserError("the episode took no step: there is nothing to probe")
    if at:
        outside = [s for s in at if not 0 <= s < length]
        if outside:
            raise UserError(f"--at {','.join(map(str, outside))}: outside the episode (steps 0..{length - 1})")
        return tuple(sorted(set(at)))
    every = every or 10
    if every < 1:
        raise UserError(f"--every {every}: give a step interval of 1 or more")
    return tuple(range(every - 1, length, every)) or (length - 1,)


def memory_after(episode: str, events: Sequence[AnyEvent], wanted: set[int]) -> dict[int, MemoryState]:
    """The memory after each wanted step, folded from the write-ops and checked against the
    digest the step recorded (a mismatch means the log does not rebuild this episode)."""
    state, out = EMPTY, {}
    for ev in events:
        if is_write(ev):
            state, _ = apply(state, ev.op, REPLAY_LIMITS)
        elif isinstance(ev, StepTaken) and ev.step in wanted:
            if state.digest() != ev.memory_digest:
                raise UserError(f"episode {episode}: its memory after step {ev.step} does not rebuild from the log "
                                f"(`automem audit {episode}` and `automem replay {episode}` say where)")
            out[ev.step] = state
    return out


def answered(events: Iterable[AnyEvent], run: str) -> dict[tuple[int, str], tuple[ProbeAsked, ProbeAnswered]]:
    """The probes of `run` answered without failing, by (probe, arm), each with its question."""
    asked: ProbeAsked | None = None
    out: dict[tuple[int, str], tuple[ProbeAsked, ProbeAnswered]] = {}
    for ev in events:
        if isinstance(ev, ProbeAsked):
            asked = ev if ev.run == run else None
        elif asked is not None and isinstance(ev, ProbeAnswered) and (ev.probe, ev.arm) == (asked.probe, asked.arm):
            if ev.error is None:
                out[(ev.probe, ev.arm)] = (asked, ev)
            asked = None
    return out


def _same(asked: ProbeAsked, probe: Probe) -> bool:
    """A stored answer is reused only for the very question it answered."""
    return (asked.kind, asked.step, asked.about, asked.question, asked.key) == (
        probe.kind, probe.step, probe.about, probe.question, probe.key)


def probe_episode(log: EventLog, episode: str, policy: Policy, seed: int = 0, kinds: Sequence[str] | None = None,
                  at: Sequence[int] | None = None, every: int | None = None, turns: int = 3, concurrency: int = 1,
                  on_probe: Callable[[], None] | None = None) -> ProbeRun:
    """Ask `episode`'s probes (both arms; only the control for an agent without memory)."""
    if not 1 <= turns <= MAX_TURNS:
        raise UserError(f"--turns {turns}: give 1 to {MAX_TURNS} reader turns")
    record = read_episode(log, episode)
    start, steps = record.start, record.steps
    chosen = check_kinds(start.env, kinds)
    wanted = check_steps(len(steps), at, every)
    structure = episode_structure(log, record)
    settings = ProbeSettings(episode, policy.name, seed, chosen, wanted, turns)
    run = settings.run
    memories = memory_after(episode, record.events, set(wanted))
    arms = ARMS if start.agent.has_memory else ("control",)
    skipped: list[str] = []
    probes: list[Probe] = []
    for t in wanted:
        if steps[t].facts == EnvFacts():
            skipped.append(f"step {t}: no env facts recorded")
            continue
        found = probes_at(start.env, episode, steps, t, chosen, seed)
        if not found:
            skipped.append(f"step {t}: nothing to ask that the observation does not already show")
        probes += found
    stream = probe_stream(episode)
    stored = answered((r.event for r in log.read_stream(stream)), run)
    reader = ask.reader_structure(structure)
    system = ask.system_prompt(start.env, reader)
    limits = agent_limits(structure)

    def job(index: int, probe: Probe, arm: str) -> Generator[Call, Completion, Asked]:
        memory = memories[probe.step] if arm == "memory" else EMPTY
        events: list[AnyEvent] = [ProbeAsked(
            run=run, probe=index, arm=arm, step=probe.step, about=probe.about, kind=probe.kind,
            question=probe.question, key=probe.key, reader=policy.name, memory_digest=memory.digest(), turns=turns)]
        session = policy.for_episode(derive_seed(seed, f"probe/{episode}/{index}/{arm}", 31))
        error = None
        try:
            answer = yield from ask.read(session, reader, limits, system, probe, steps[probe.step].observation,
                                         memory, turns, events)
        except ModelError as exc:
            answer, error = "", str(exc)
        answer = answer[:MAX_ANSWER]
        verdict = error is None and correct(KINDS[probe.kind].answer, probe.key, answer)
        events.append(ProbeAnswered(run=run, probe=index, arm=arm, answer=answer, correct=verdict, error=error))
        append_at_head(log, stream, events)
        if on_probe is not None:
            on_probe()
        return _asked(index, probe, arm, answer, verdict, error)

    reuse = {key for key, (asked, _) in stored.items() if key[0] < len(probes) and _same(asked, probes[key[0]])}
    work = [(i, p, arm) for i, p in enumerate(probes) for arm in arms if (i, arm) not in reuse]
    fresh = {(a.index, a.arm): a for a in drive((job(i, p, arm) for i, p, arm in work), concurrency)}
    log.flush()
    results = []
    for i, p in enumerate(probes):
        for arm in arms:
            if (i, arm) in fresh:
                results.append(fresh[(i, arm)])
            else:  # re-checked from the log: the stored verdict is never taken on trust
                answer = stored[(i, arm)][1].answer
                results.append(_asked(i, p, arm, answer, correct(KINDS[p.kind].answer, p.key, answer), None))
    figures = [_figures(f"{run}/{kind}", kind, [r for r in results if r.kind == kind]) for kind in chosen]
    return ProbeRun(run=run, episode=episode, env=start.env, agent=start.agent.label(), reader=policy.name, seed=seed,
                    steps=wanted, kinds=chosen, overall=_figures(f"{run}/all", "all", results),
                    per_kind=[f for f in figures if f.memory.n or f.control.n],
                    failed=sum(r.error is not None for r in results), reused=len(results) - len(fresh),
                    skipped=skipped, probes=results)


def _asked(index: int, probe: Probe, arm: str, answer: str, verdict: bool, error: str | None) -> Asked:
    return Asked(index, arm, probe.kind, probe.step, probe.about, probe.question, probe.key, answer, verdict, error)


def _figures(label: str, kind: str, results: Sequence[Asked]) -> KindFigures:
    """Accuracy per arm over the probes answered (failed ones excluded) and the paired gap."""
    by_arm = {arm: {r.index: float(r.correct) for r in results if r.arm == arm and r.error is None} for arm in ARMS}
    both = sorted(set(by_arm["memory"]) & set(by_arm["control"]))
    memory, control = (accuracy(list(by_arm[arm].values()), f"{label}/{arm}") for arm in ARMS)
    return KindFigures(kind, memory, control,
                       accuracy([by_arm["memory"][i] - by_arm["control"][i] for i in both], f"{label}/gap"))
