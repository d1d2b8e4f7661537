"""Probe runs replayed without the model: every asking re-run from the log alone.

For each probe asked of an episode, the memory is rebuilt at its step (its digest checked
against the one recorded), the reader's conversation is rebuilt with the recorded answers
served in order (engine/episodes/replay's RecordedPolicy), and every call (its prompt
digest), every lookup (its result digest) and the answer must come out as recorded; the
verdict is re-checked. So a probe figure can be trusted without the model that produced it.
"""

from __future__ import annotations

from typing import Sequence

import msgspec

from automem.engine.agent.episode import advance
from automem.engine.episodes.read import read_episode
from automem.engine.episodes.replay import LogEnded, RecordedPolicy
from automem.engine.log.port import EventLog
from automem.engine.memory import EMPTY
from automem.engine.policy.base import ModelError, answer
from automem.engine.probes import ask
from automem.engine.probes.check import MAX_ANSWER, correct
from automem.engine.probes.kinds import KINDS, Probe
from automem.engine.probes.run import episode_structure, memory_after
from automem.schemas.events import AnyEvent, LLMCalled, ProbeAnswered, ProbeAsked
from automem.schemas.streams import probe_stream
from automem.schemas.structure import agent_limits


class ProbeReplay(msgspec.Struct, frozen=True):
    episode: str
    askings: int
    verified: int
    diverged: list[str]  # where and what, one line each


Asking = tuple[ProbeAsked, list[AnyEvent], ProbeAnswered | None]


def askings(events: Sequence[AnyEvent]) -> list[Asking]:
    """The stream cut into askings: the question, what the reader did, its answer (None: cut off)."""
    out: list[Asking] = []
    for ev in events:
        if isinstance(ev, ProbeAsked):
            out.append((ev, [], None))
        elif out and out[-1][2] is None:
            if isinstance(ev, ProbeAnswered):
                out[-1] = (out[-1][0], out[-1][1], ev)
            else:
                out[-1][1].append(ev)
    return out


def _plain(events: Sequence[AnyEvent]) -> list[AnyEvent]:
    """Events without what depends on the run rather than the answers (a call's latency)."""
    return [msgspec.structs.replace(e, latency_ms=0.0) if isinstance(e, LLMCalled) else e for e in events]


def replay_probes(log: EventLog, episode: str) -> ProbeReplay:
    record = read_episode(log, episode)
    structure = episode_structure(log, record)
    reader, limits = ask.reader_structure(structure), agent_limits(structure)
    system = ask.system_prompt(record.start.env, reader)
    found = askings([r.event for r in log.read_stream(probe_stream(episode))])
    steps = {s.step: s for s in record.steps}
    memories = memory_after(episode, record.events, {a.step for a, _, _ in found})
    diverged: list[str] = []
    for asked, did, answered in found:
        where = f"{asked.run} probe {asked.probe} ({asked.arm}, step {asked.step})"
        memory = memories.get(asked.step, EMPTY) if asked.arm == "memory" else EMPTY
        if answered is None:
            continue  # cut off mid-asking: the next run asks it again
        if asked.step not in steps or memory.digest() != asked.memory_digest:
            diverged.append(f"{where}: the memory at the step does not rebuild to the recorded digest")
            continue
        probe = Probe(asked.kind, asked.step, asked.about, asked.question, asked.key)
        policy = RecordedPolicy([e for e in did if isinstance(e, LLMCalled)], asked.reader)
        rebuilt: list[AnyEvent] = []
        machine = ask.read(policy, reader, limits, system, probe, steps[asked.step].observation, memory, asked.turns,
                           rebuilt)
        text, error = "", None
        try:
            call = next(machine)
            while True:
                call = advance(machine, answer(*call))
        except StopIteration as done:
            text = done.value[:MAX_ANSWER]
        except ModelError as exc:
            error = str(exc)
        except LogEnded:
            diverged.append(f"{where}: the reader's conversation asks for more answers than were recorded")
            continue
        if _plain(rebuilt) != _plain(did):
            diverged.append(f"{where}: the rebuilt calls or lookups differ from the recorded ones")
        elif (text, error) != (answered.answer, answered.error):
            diverged.append(f"{where}: answer {text!r} rebuilt, {answered.answer!r} recorded")
        elif answered.correct != (error is None and correct(KINDS[asked.kind].answer, asked.key, text)):
            diverged.append(f"{where}: the recorded verdict is not the checker's")
    complete = sum(a is not None for _, _, a in found)
    return ProbeReplay(episode, complete, complete - len(diverged), diverged)
