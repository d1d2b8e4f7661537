"""Deterministic replay: re-run an episode from its log and check it event by event.

The env is re-created from the recorded seed; the recorded model responses are fed, in
order, through the same agent (parser, reducer, prompt builder) into a throwaway
in-memory log; then every re-derived event is compared with the recorded one. Prompt,
observation and memory digests are fields of those events, so a match proves them all.
No model runs, and nothing is written to the original log.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec

from automem.engine.agent.baseline import make_episode
from automem.engine.agent.episode import EpisodeSpec
from automem.engine.envs.base import TextEnv
from automem.engine.episodes.read import EpisodeRecord, read_episode
from automem.engine.log.memory import MemoryLog
from automem.engine.log.port import EventLog
from automem.engine.policy.base import Completion, ModelError, PolicyRequest
from automem.engine.policy.sampling import Sampling
from automem.schemas.errors import UserError
from automem.schemas.events import EpisodeEnded, EpisodeStarted, LLMCalled, StepTaken
from automem.schemas.streams import episode_stream, structure_stream
from automem.schemas.structure import Structure

# Fields that describe the run rather than the episode: never compared.
INFORMATIONAL = {"latency_ms", "engine_version"}


class Divergence(msgspec.Struct):
    step: int
    field: str
    expected: Any
    actual: Any


class ReplayResult(msgspec.Struct):
    episode: str
    steps: int
    verified: int
    divergence: Divergence | None
    ended: bool  # False: the log stops mid-episode (a crashed run); replay checked what is there


class LogEnded(Exception):
    """The recorded responses ran out before the episode did: a crashed run."""


# Sees each request the agent sent next to the recorded call that answers it.
Observer = Callable[[LLMCalled, PolicyRequest], None]


class RecordedEpisode(EpisodeRecord, frozen=True):
    """An episode's record whose structure document is in the log: what re-running it needs."""

    structure: Structure

    def spec(self, env: TextEnv, **changes: Any) -> EpisodeSpec:
        """The recorded episode's spec on `env`; `changes` (a fork's id, budget, drops...) override fields."""
        start = self.start
        fields: dict[str, Any] = dict(episode=start.episode, seed=start.seed, max_steps=start.max_steps,
                                      structure=self.structure, version=start.structure, parent=start.parent,
                                      fork_step=start.fork_step, dropped=start.dropped, sampling=recorded_sampling(start),
                                      agent=start.agent)
        return EpisodeSpec(env=env, **(fields | changes))


def recorded_episode(log: EventLog, episode: str) -> RecordedEpisode:
    """Read an episode for re-running it; a missing episode or structure is the user's to fix."""
    record = read_episode(log, episode)
    start = record.start
    if record.structure is None:
        raise UserError(f"structure {start.structure} of {episode} is not in this log (stream {structure_stream(start.env)}); "
                        "copy it from the store the episode was recorded in")
    return RecordedEpisode(record.episode, record.events, start, record.structure)


class RecordedPolicy:
    """Serves the recorded responses in order (one queue for both roles: calls are ordered)."""

    def __init__(self, calls: list[LLMCalled], name: str, observe: Observer | None = None) -> None:
        self.calls, self.index, self.name, self.observe = calls, 0, name, observe

    def for_episode(self, seed: int) -> RecordedPolicy:
        """The recording is this one episode's already."""
        return self

    def complete(self, request: PolicyRequest) -> Completion:
        if self.index >= len(self.calls):
            raise LogEnded()
        call = self.calls[self.index]
        self.index += 1
        if self.observe is not None:
            self.observe(call, request)
        if call.error is not None:
            raise ModelError(call.error)
        # Recorded text already holds any answer prefix and stop string: hand back only
        # the continuation, so the agent rebuilds exactly the recorded text.
        prefix = request.messages[-1]["content"] if request.messages[-1]["role"] == "assistant" else ""
        text = call.response[len(prefix):] if call.response.startswith(prefix) else call.response
        return Completion(text=text, model=call.model, prompt_tokens=call.prompt_tokens,
                          completion_tokens=call.completion_tokens, latency_ms=call.latency_ms)


class MemoryRole:
    """The memory role's view of the same queue of answers, under its own model name."""

    def __init__(self, queue: RecordedPolicy, name: str) -> None:
        self.queue, self.name = queue, name

    def for_episode(self, seed: int) -> MemoryRole:
        return self

    def complete(self, request: PolicyRequest) -> Completion:
        return self.queue.complete(request)


def recorded_sampling(start: EpisodeStarted) -> Sampling:
    return Sampling(start.temperature, start.top_p)


def _first_difference(expected: Any, actual: Any, step: int) -> Divergence | None:
    if type(expected) is not type(actual):
        return Divergence(step, "event", type(expected).__name__, type(actual).__name__)
    if expected == actual:  # all fields equal (compared in C): the usual case, no field-by-field walk
        return None
    for field in expected.__struct_fields__:
        if field in INFORMATIONAL:
            continue
        a, b = getattr(expected, field), getattr(actual, field)
        if a != b:
            return Divergence(step, field, msgspec.to_builtins(a), msgspec.to_builtins(b))
    return None


def replay(log: EventLog, episode: str, make_env: Callable[[str, str, str], TextEnv] | None = None,
           observe: Observer | None = None) -> ReplayResult:
    """`make_env(name, task, observation)`: where the env comes from (benchmarks time it); default the registry's.
    `observe(call, request)`: sees every request the agent sent with the recorded call it got."""
    if make_env is None:
        from automem.engine.envs import make_env as registry

        make_env = registry

    run = recorded_episode(log, episode)
    start, recorded = run.start, run.events
    agent = RecordedPolicy(run.calls, start.models.get("agent", "recorded"), observe)
    memory = MemoryRole(agent, start.models["memory"]) if "memory" in start.models else None
    env = make_env(start.env, start.task, start.agent.observation)
    scratch = MemoryLog()
    try:
        make_episode(scratch, run.spec(env), agent, memory, start.engine_version).run()
    except LogEnded:
        pass
    finally:
        env.close()
    replayed = [r.event for r in scratch.read_stream(episode_stream(episode))]
    ended = isinstance(recorded[-1], EpisodeEnded)
    step, verified = 0, 0
    for i, expected in enumerate(recorded):
        if not ended and i >= len(replayed):
            break  # a crashed run: what was recorded has been checked
        actual = replayed[i] if i < len(replayed) else None
        step = getattr(expected, "step", step)
        if actual is None:
            return ReplayResult(episode, _steps(recorded), verified, Divergence(step, "event", type(expected).__name__, None), ended)
        divergence = _first_difference(expected, actual, step)
        if divergence is not None:
            return ReplayResult(episode, _steps(recorded), verified, divergence, ended)
        verified += isinstance(expected, StepTaken)
    if ended and len(replayed) > len(recorded):
        extra = replayed[len(recorded)]
        return ReplayResult(episode, _steps(recorded), verified,
                            Divergence(getattr(extra, "step", step), "event", None, type(extra).__name__), ended)
    return ReplayResult(episode, _steps(recorded), verified, None, ended)


def _steps(events: list) -> int:
    return sum(isinstance(e, StepTaken) for e in events)
