"""Probe credit: memory writes scored by what they delivered to memory probes.

A probe's lookups (engine/probes) are reads of the memory as it was after its step; the
audit's provenance graph says which writes put the lines each lookup showed there. A write
whose lines were shown to a correctly answered probe earns credit, one whose lines were
shown to a wrongly answered one is penalised (a probe's +1 or -1 shared among the writes it
was shown), so loop 2 can select on what memory delivers when the game gives no reward.

Kept apart from the rule score: DecisionScored events with rule "probes" and their own
version (of this rule and the probe run), on the same score stream; a dataset uses them
with `--scorer VERSION`. Only episodes no evaluation has used are scored: held-out and
selection episodes never feed anything that selects.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Sequence

import msgspec

from automem.engine.audit import provenance
from automem.engine.episodes.read import read_episode
from automem.engine.log.port import ConflictError, EventLog
from automem.engine.probes.check import correct
from automem.engine.probes.kinds import KINDS
from automem.engine.probes.run import episode_structure
from automem.schemas.errors import UserError
from automem.schemas.events import (
    AnyEvent,
    DecisionScored,
    LoopStageDone,
    MemoryOpApplied,
    ModelVersionEvaluated,
    ProbeAnswered,
    ProbeAsked,
    StepTaken,
    StructureEvaluated,
)
from automem.schemas.streams import probe_stream, score_stream
from automem.schemas.structure import MemoryLimits, agent_limits

RULE = "probes"
GENERATION = 1  # bump when the credit rule changes: its scores get a new version
EVALUATION_STAGES = ("baseline", "compare", "report", "evaluate")  # a loop's stages that play evaluation seeds

Key = tuple[int, str, int, int | None]  # (step, phase, turn, index): index None for the whole answer


class MemoryArm(msgspec.Struct):
    """The memory arm of one probe run as its stream holds it: each probe's last asking, the
    lookups of that asking, and the verdict re-checked from the answer (never the stored one)."""

    run: str
    asked: dict[int, ProbeAsked]
    lookups: dict[int, list[MemoryOpApplied]]
    verdict: dict[int, bool]  # answered probes only

    @property
    def version(self) -> str:
        """The scorer version: this rule, the run, and which answers it is credited from, so a
        run completed later (failed probes asked again) is a new, complete set of scores."""
        answers = ",".join(f"{p}:{int(v)}" for p, v in sorted(self.verdict.items()))
        return "probes-" + hashlib.sha256(f"{GENERATION}/{self.run}/{answers}".encode()).hexdigest()[:12]


def memory_arm(probe_events: Sequence[AnyEvent], run: str) -> MemoryArm:
    arm = MemoryArm(run, {}, {}, {})
    current: int | None = None
    for ev in probe_events:
        if isinstance(ev, ProbeAsked):
            current = ev.probe if ev.run == run and ev.arm == "memory" else None
            if current is not None:
                arm.asked[current], arm.lookups[current] = ev, []
                arm.verdict.pop(current, None)
        elif current is not None and isinstance(ev, MemoryOpApplied):
            arm.lookups[current].append(ev)
        elif current is not None and isinstance(ev, ProbeAnswered):
            if ev.error is None:
                asked = arm.asked[current]
                arm.verdict[current] = correct(KINDS[asked.kind].answer, asked.key, ev.answer)
            current = None
    return arm


def credit(episode_events: Sequence[AnyEvent], arm: MemoryArm, limits: MemoryLimits) -> dict[Key, dict[str, float]]:
    """Per credited write command and per answer holding one: {"probe_right": +x, "probe_wrong": -y}. Pure.

    The memory arm's answered probes are spliced into the episode right after the step they
    were asked at, their lookups then being reads like any other."""
    asked, lookups, verdict = arm.asked, arm.lookups, arm.verdict
    at_step: dict[int, list[int]] = defaultdict(list)
    for probe in sorted(verdict):
        at_step[asked[probe].step].append(probe)
    spliced: list[object] = []
    owner: dict[int, int] = {}  # op position -> the probe whose lookup it is
    ops = 0
    for ev in episode_events:
        spliced.append(ev)
        ops += isinstance(ev, MemoryOpApplied)
        if isinstance(ev, StepTaken):
            for probe in at_step.get(ev.step, ()):
                for lookup in lookups[probe]:
                    owner[ops] = probe
                    spliced.append(lookup)
                    ops += 1
    trace = provenance.build(spliced, limits)
    shown: dict[int, set[int]] = defaultdict(set)  # probe -> the write positions its lookups showed
    for position, probe in owner.items():
        shown[probe].update(w for w in trace.ops[position].fed_by if w >= 0)
    out: dict[Key, dict[str, float]] = {}
    for probe, writes in sorted(shown.items()):
        part = 1.0 / len(writes) if writes else 0.0
        name, sign = ("probe_right", 1.0) if verdict[probe] else ("probe_wrong", -1.0)
        for w in writes:
            e = trace.ops[w].event
            for key in ((e.step, e.phase, e.turn, e.index), (e.step, e.phase, e.turn, None)):
                comp = out.setdefault(key, {})
                comp[name] = comp.get(name, 0.0) + sign * part
    return out


def evaluation_episodes(log: EventLog) -> dict[str, str]:
    """Every episode some evaluation played (held out or for selection), with where: never scored."""
    out: dict[str, str] = {}
    for stream in log.streams("model"):
        for r in log.read_stream(stream):
            if isinstance(r.event, ModelVersionEvaluated):
                for ep in (*r.event.episodes, *r.event.baseline_episodes):
                    out.setdefault(ep, f"the evaluation of {r.event.name}")
    for stream in log.streams("structure"):
        for r in log.read_stream(stream):
            if isinstance(r.event, StructureEvaluated):
                for ep in r.event.episodes:
                    out.setdefault(ep, f"loop 1's {r.event.purpose or 'evaluation'} seeds of {r.event.version}")
    for stream in log.streams("loop"):
        for r in log.read_stream(stream):
            if isinstance(r.event, LoopStageDone) and r.event.stage in EVALUATION_STAGES:
                for ep in r.event.episodes:
                    out.setdefault(ep, f"the {r.event.stage} stage of {stream}")
    return out


def check_trainable(log: EventLog, episode: str) -> None:
    """Refuse an episode an evaluation played: its probes never feed anything that selects."""
    used = evaluation_episodes(log).get(episode)
    if used is not None:
        raise UserError(f"{episode} was played by {used}: probes of evaluation episodes never feed scores "
                        "(probe training episodes for --score)")


def score_probes(log: EventLog, episode: str, run: str) -> tuple[str, int]:
    """Append the probe credit of `run` to the episode's score stream (idempotent); returns
    (version, decisions written). An episode an evaluation played is refused."""
    check_trainable(log, episode)
    record = read_episode(log, episode)
    arm = memory_arm([r.event for r in log.read_stream(probe_stream(episode))], run)
    version = arm.version
    limits = agent_limits(episode_structure(log, record))
    kinds = {(e.step, e.phase, e.turn, e.index): e.op.kind for e in record.events if isinstance(e, MemoryOpApplied)}
    scores = [DecisionScored(episode=episode, step=k[0], phase=k[1], turn=k[2], score=round(sum(comp.values()), 6),
                             components=comp, rule=RULE, index=k[3], kind="answer" if k[3] is None else kinds.get(k, ""),
                             scorer=version)
              for k, comp in sorted(credit(record.events, arm, limits).items(),
                                    key=lambda kv: (kv[0][:3], -1 if kv[0][3] is None else kv[0][3]))]
    stream = score_stream(episode)
    while True:
        head = log.head(stream)
        done = {(e.step, e.phase, e.turn, e.index) for e in (r.event for r in log.read_stream(stream))
                if isinstance(e, DecisionScored) and e.scorer == version}
        fresh = [s for s in scores if (s.step, s.phase, s.turn, s.index) not in done]
        try:
            if fresh:
                log.append(stream, head, fresh)
            return version, len(fresh)
        except ConflictError:
            continue  # another writer appended meanwhile: look again

