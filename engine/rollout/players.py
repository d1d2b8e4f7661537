"""Players: where a side's episodes come from, one episode per seed, in seed order.

`Local` plays them in this process; `Remote` asks `automem worker`s on the bus for them.
Evaluation, loop 1 and the loop play their sides through either, unaware which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import msgspec
from tqdm import tqdm

from automem.engine.episodes.read import started
from automem.engine.log.port import ConflictError, EventLog, last_event
from automem.engine.log.wait import wait_for
from automem.engine.models.load import make_policies
from automem.engine.policy.base import Policy
from automem.engine.policy.spec import parse_spec
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import StepBar, play
from automem.engine.structure.registry import resolve_structure
from automem.schemas import ids
from automem.schemas.agent import MEMORY
from automem.schemas.errors import UserError
from automem.schemas.events import EpisodeEnded, RolloutCompleted, RolloutFailed, RolloutRequested
from automem.schemas.streams import episode_of, episode_stream, rollout_stream


class Player(Protocol):
    """Where a side's episodes come from: played in this process (`Local`), or by rollout
    workers on the bus (`Remote`). Either way one episode per seed, in seed order, an ended
    one the store already has for the same request reused."""

    def episodes(self, log: EventLog, data: Path, req: RunRequest, seeds: list[int]) -> tuple[list[str], int]:
        """The episodes, and how many of them were there already."""
        ...


class Local:
    """Plays in this process, up to `concurrency` episodes at a time, with a step bar on stderr.
    Policies are loaded once (one vLLM engine, one copy of a local model) however many sides
    are played."""

    def __init__(self, concurrency: int = 1, bar: bool = False) -> None:
        self.concurrency, self.bar = concurrency, bar
        self.loaded: dict[tuple[str, str | None], tuple[Policy, Policy | None]] = {}

    def episodes(self, log: EventLog, data: Path, req: RunRequest, seeds: list[int]) -> tuple[list[str], int]:
        key = (req.policy, req.memory_policy)
        if key not in self.loaded:
            self.loaded[key] = make_policies(req.policy, req.memory_policy, log, data)
        policy, memory = self.loaded[key]
        models = {"agent": policy.name} | ({"memory": memory.name} if memory is not None else {})
        _, version = resolve_structure(log, req.env, req.structure, req.policy)
        stored = _stored(log, (req.env, req.task, version if req.agent.has_memory else "", tuple(sorted(models.items())),
                               req.max_steps, req.sampling.temperature, req.sampling.top_p, req.agent))
        missing = [s for s in seeds if s not in stored]
        if missing:
            run = msgspec.structs.replace(req, episodes=len(missing), seeds=tuple(missing), concurrency=self.concurrency)
            bar = StepBar(len(missing) * req.max_steps, f"{req.env} x{len(missing)}") if self.bar else None
            try:
                for summary in play(log, run, policy, memory, range(len(missing)), bar):
                    stored[summary.seed] = summary.id
            finally:
                if bar is not None:
                    bar.close()
        return [stored[s] for s in seeds], len(seeds) - len(missing)


def _stored(log: EventLog, key: tuple) -> dict[int, str]:
    """Ended episodes of (env, task, structure, models, max steps, sampling, agent), the first per seed
    (a baseline plays no structure: any is the same episode)."""
    found: dict[int, str] = {}
    for stream in log.streams("ep"):
        s = started(log, episode_of(stream))
        if s is None or s.parent is not None:
            continue
        if (s.env, s.task, s.structure if s.agent.has_memory else "", tuple(sorted(s.models.items())), s.max_steps,
                s.temperature, s.top_p, s.agent) != key:
            continue
        last = last_event(log, stream)
        if s.seed not in found and isinstance(last, EpisodeEnded) and not last.cause.startswith("model_error"):
            found[s.seed] = s.episode  # a model error is the server's hiccup, not a result: never reused
    return found


class Remote:
    """A side's episodes played by `automem worker`s on the bus.

    Each seed's request id derives from what decides its episode (env, task, seed, structure
    version, models, max steps, sampling, a baseline agent) and an attempt number, so a driver started again
    finds the requests it made, and the episodes workers completed for them, instead of
    asking twice; a worker's episode id derives from its request's. An outcome that is no
    result (an episode ended on a model error, the server's hiccup; a request the worker
    could not play, RolloutFailed) is asked for again under the next attempt: each start
    passes over those it finds, and retries a model error `retries` times while it waits;
    a failed request ends the wait at once with the worker's reason.

    With an OpenAI-compatible agent, a model version runs where the agent runs: the server
    serves each version's adapter under the version's name (vLLM with the trainer's copy
    in its adapters folder, and the publisher), so workers need no weights of their own."""

    def __init__(self, wait_s: float = 3600.0, poll_s: float = 1.0, retries: int = 2) -> None:
        self.wait_s, self.poll_s, self.retries = wait_s, poll_s, retries

    def episodes(self, log: EventLog, data: Path, req: RunRequest, seeds: list[int]) -> tuple[list[str], int]:
        task = req.check().task
        _, version = resolve_structure(log, req.env, req.structure, req.policy)
        memory = served_memory(req.policy, req.memory_policy)
        # a baseline agent is part of what decides the episode, the structure is not; the memory
        # agent keeps the ids it always had
        agent = [] if req.agent == MEMORY else [req.agent]
        key = msgspec.json.encode([req.env, task, version if req.agent.has_memory else "", req.policy, memory,
                                   req.max_steps, req.sampling.temperature, req.sampling.top_p, *agent])
        digest = ids.request_digest(key)
        attempt, retried = dict.fromkeys(seeds, 0), dict.fromkeys(seeds, 0)
        done: dict[int, tuple[str, bool]] = {}  # seed -> (episode, found at the first look)
        looks = [0]

        def step(seed: int) -> None:
            """Move one seed on: ask, wait, take the episode, or pass to the next attempt."""
            while True:
                request_id = ids.derived_request_id(req.env, seed, digest, attempt[seed])
                events = [r.event for r in log.read_stream(rollout_stream(request_id))]
                if not events:
                    _request(log, RolloutRequested(
                        request_id=request_id, env=req.env, task=task, seed=seed, max_steps=req.max_steps,
                        policy=req.policy, memory_policy=memory, structure=version,
                        temperature=req.sampling.temperature, top_p=req.sampling.top_p, agent=req.agent))
                    return
                episode = next((e.episode for e in events if isinstance(e, RolloutCompleted)), None)
                failed = next((e for e in events if isinstance(e, RolloutFailed)), None)
                if episode is None and failed is None:
                    return  # a worker has it, or will
                if looks[0] == 0 and (failed is not None or _model_error(log, episode)):  # type: ignore[arg-type]
                    attempt[seed] += 1  # an earlier start's outcome that is no result: ask again
                    continue
                if failed is not None and episode is None:
                    raise UserError(f"a worker could not play {rollout_stream(request_id)}: {failed.reason}")
                if retried[seed] < self.retries and _model_error(log, episode):  # type: ignore[arg-type]
                    attempt[seed], retried[seed] = attempt[seed] + 1, retried[seed] + 1
                    continue
                played = started(log, episode)  # type: ignore[arg-type]
                if played is not None and played.agent != req.agent:
                    raise UserError(f"the worker that completed {rollout_stream(request_id)} played the "
                                    f"{played.agent.label()} agent, not {req.agent.label()}: upgrade the workers "
                                    "(automem 0.7.0 or later plays baseline agents)")
                done[seed] = (episode, looks[0] == 0)  # type: ignore[assignment]
                bar.update(1)
                return

        def look() -> tuple[list[str], int] | None:
            for seed in [s for s in seeds if s not in done]:
                step(seed)
            looks[0] += 1
            return ([done[s][0] for s in seeds], sum(d[1] for d in done.values())) if len(done) == len(seeds) else None

        def late() -> str:
            seed = next(s for s in seeds if s not in done)
            waiting = rollout_stream(ids.derived_request_id(req.env, seed, digest, attempt[seed]))
            return (f"{len(seeds) - len(done)} of {len(seeds)} rollout requests were not completed within {self.wait_s:g} s "
                    f"(e.g. {waiting}): start `automem worker`s on this bus")

        with tqdm(total=len(seeds), desc=f"{req.env} x{len(seeds)} on workers", unit="episode") as bar:
            return wait_for(look, self.wait_s, self.poll_s, late)


def served_memory(policy: str, memory: str | None) -> str | None:
    """The memory spec workers get: `model:NAME` beside an OpenAI-compatible agent becomes the
    version's adapter on the agent's server (`openai:NAME@URL`); anything else as it is."""
    agent = parse_spec(policy)
    if memory is None or agent.kind != "openai" or not memory.startswith("model:"):
        return memory
    return f"openai:{memory.removeprefix('model:')}@{agent.base_url}"


def _request(log: EventLog, event: RolloutRequested) -> None:
    try:
        log.append(rollout_stream(event.request_id), 0, [event])
    except ConflictError:
        pass  # another start asked for it first: the same request


def _model_error(log: EventLog, episode: str) -> bool:
    last = last_event(log, episode_stream(episode))
    return isinstance(last, EpisodeEnded) and last.cause.startswith("model_error")
