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

from automem.engine.audit import provenance
from automem.engine.episodes.read import read_episode
from automem.engine.log.port import ConflictError, EventLog
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
from automem.schemas.structure import MemoryLimits

RULE = "probes"
GENERATION = 1  # bump when the credit rule changes: its scores get a new version
EVALUATION_STAGES = ("baseline", "compare", "report", "evaluate")  # a loop's stages that play evaluation seeds

Key = tuple[int, str, int, int | None]  # (step, phase, turn, index): index None for the whole answer


def probe_scorer_version(run: str) -> str:
    return "probes-" + hashlib.blake2b(f"{GENERATION}/{run}".encode(), digest_size=6).hexdigest()


def credit(episode_events: Sequence[AnyEvent], probe_events: Sequence[AnyEvent], run: str,
           limits: MemoryLimits) -> dict[Key, dict[str, float]]:
    """Per credited write command and per answer holding one: {"probe_right": +x, "probe_wrong": -y}. Pure.

    The memory arm's answered probes of `run` are spliced into the episode right after the
    step they were asked at, their lookups then being reads like any other."""
    asked: dict[int, ProbeAsked] = {}
    lookups: dict[int, list[MemoryOpApplied]] = defaultdict(list)
    verdict: dict[int, bool] = {}
    current: int | None = None
    for ev in probe_events:
        if isinstance(ev, ProbeAsked):
            current = ev.probe if ev.run == run and ev.arm == "memory" else None
            if current is not None:
                asked[current], lookups[current] = ev, []
        elif current is not None and isinstance(ev, MemoryOpApplied):
            lookups[current].append(ev)
        elif current is not None and isinstance(ev, ProbeAnswered):
            if ev.error is None:
                verdict[current] = ev.correct
            current = None
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
    probe_events = [r.event for r in log.read_stream(probe_stream(episode))]
    version = probe_scorer_version(run)
    kinds = {(e.step, e.phase, e.turn, e.index): e.op.kind for e in record.events if isinstance(e, MemoryOpApplied)}
    scores = [DecisionScored(episode=episode, step=k[0], phase=k[1], turn=k[2], score=round(sum(comp.values()), 6),
                             components=comp, rule=RULE, index=k[3], kind="answer" if k[3] is None else kinds.get(k, ""),
                             scorer=version)
              for k, comp in sorted(credit(record.events, probe_events, run, record.limits).items(),
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

