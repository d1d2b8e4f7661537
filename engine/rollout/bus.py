"""Rollouts at scale: `submit` publishes requests; workers in a group turn each into exactly
one completed episode.

Per request the `rollout/<id>` stream records the story: RolloutRequested, then for each
attempt RolloutAttempted(episode), and finally one RolloutCompleted(episode). A worker
that finds earlier attempts without completion (their worker died: the request came back
because its offset was never committed) marks those episodes abandoned and tries again.
Offsets are committed only after the completion is acknowledged, so a request is never
dropped; the first completion recorded wins, so it is never counted twice. A worker with
--concurrency C takes up to C requests per poll, plays them together (engine/rollout) and
commits once all of them are complete: never past a request still in flight.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import sys
import threading
from pathlib import Path
from typing import Generator

import msgspec
from tqdm import tqdm

from automem.engine.agent.episode import Call, EpisodeSpec
from automem.engine.log import ConflictError, last_event
from automem.engine.log.port import EventLog
from automem.engine.log.wait import wait_for
from automem.engine.policy.base import Completion, Policy
from automem.engine.policy.sampling import Sampling
from automem.engine.rollout.drive import drive
from automem.engine.rollout.limits import check_concurrency, check_seeds
from automem.engine.rollout.run import RunRequest, episode_job, grouped
from automem.engine.structure.registry import resolve_structure
from automem.schemas.errors import UserError
from automem.schemas.events import (
    EpisodeAbandoned,
    EpisodeEnded,
    RolloutAttempted,
    RolloutCompleted,
    RolloutFailed,
    RolloutRequested,
)
from automem.schemas.streams import episode_stream, request_of, rollout_stream


def submit(log: EventLog, req: RunRequest) -> list[str]:
    """Publish one RolloutRequested per episode of `req` (seeds seed, seed+1, ...); returns the ids."""
    from automem.engine.envs import resolve_task

    task = resolve_task(req.env, req.task)
    check_seeds(req.seed, req.episodes)
    resolve_structure(log, req.env, req.structure, req.policy)  # an unknown structure is refused now, not by every worker
    ids = []
    for i in range(req.episodes):
        seed = req.seed + i
        request_id = f"{req.env}-s{seed}-{secrets.token_hex(4)}"
        log.append(rollout_stream(request_id), 0, [RolloutRequested(
            request_id=request_id, env=req.env, task=task, seed=seed, max_steps=req.max_steps, policy=req.policy,
            memory_policy=req.memory_policy, structure=req.structure, temperature=req.sampling.temperature,
            top_p=req.sampling.top_p)])
        ids.append(request_id)
    return ids


def completed(log: EventLog, request_id: str) -> str | None:
    """The request's completed episode, if any (the first completion recorded)."""
    for rec in log.read_stream(rollout_stream(request_id)):
        if isinstance(rec.event, RolloutCompleted):
            return rec.event.episode
    return None


def _abandon_unfinished(log: EventLog, request_id: str, worker: str) -> int:
    """Mark earlier attempts that never ended as abandoned; returns the attempt count."""
    attempts = [r.event.episode for r in log.read_stream(rollout_stream(request_id))
                if isinstance(r.event, RolloutAttempted)]
    for episode in attempts:
        stream = episode_stream(episode)
        head = log.head(stream)
        if head == 0:
            continue  # its worker died before the episode began: there is nothing to mark
        last = next(iter(log.read_stream(stream, head - 1))).event
        if not isinstance(last, (EpisodeEnded, EpisodeAbandoned)):
            log.append(stream, head, [EpisodeAbandoned(reason="its worker stopped before the episode ended; the request was redone",
                                                        worker=worker)])
    return len(attempts)


class Remote:
    """A side's episodes played by `automem worker`s on the bus (engine.evaluation's Player).

    Each seed's request id derives from what decides its episode (env, task, seed, structure
    version, models, max steps, sampling) and an attempt number, so a driver started again
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
        from automem.engine.envs import resolve_task

        task = resolve_task(req.env, req.task)
        _, version = resolve_structure(log, req.env, req.structure, req.policy)
        memory = served_memory(req.policy, req.memory_policy)
        key = msgspec.json.encode([req.env, task, version, req.policy, memory, req.max_steps,
                                   req.sampling.temperature, req.sampling.top_p])
        digest = hashlib.sha256(key).hexdigest()[:12]
        attempt, retried = dict.fromkeys(seeds, 0), dict.fromkeys(seeds, 0)
        done: dict[int, tuple[str, bool]] = {}  # seed -> (episode, found at the first look)
        looks = [0]

        def step(seed: int) -> None:
            """Move one seed on: ask, wait, take the episode, or pass to the next attempt."""
            while True:
                request_id = self._id(req.env, seed, digest, attempt[seed])
                events = [r.event for r in log.read_stream(rollout_stream(request_id))]
                if not events:
                    _request(log, RolloutRequested(
                        request_id=request_id, env=req.env, task=task, seed=seed, max_steps=req.max_steps,
                        policy=req.policy, memory_policy=memory, structure=version,
                        temperature=req.sampling.temperature, top_p=req.sampling.top_p))
                    return
                episode = next((e.episode for e in events if isinstance(e, RolloutCompleted)), None)
                failed = next((e for e in events if isinstance(e, RolloutFailed)), None)
                if episode is None and failed is None:
                    return  # a worker has it, or will
                if looks[0] == 0 and (failed is not None or _model_error(log, episode)):  # type: ignore[arg-type]
                    attempt[seed] += 1  # an earlier start's outcome that is no result: ask again
                    continue
                if failed is not None and episode is None:
                    raise UserError(f"a worker could not play rollout/{request_id}: {failed.reason}")
                if retried[seed] < self.retries and _model_error(log, episode):  # type: ignore[arg-type]
                    attempt[seed], retried[seed] = attempt[seed] + 1, retried[seed] + 1
                    continue
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
            return (f"{len(seeds) - len(done)} of {len(seeds)} rollout requests were not completed within {self.wait_s:g} s "
                    f"(e.g. rollout/{self._id(req.env, seed, digest, attempt[seed])}): start `automem worker`s on "
                    "this bus")

        with tqdm(total=len(seeds), desc=f"{req.env} x{len(seeds)} on workers", unit="episode") as bar:
            return wait_for(look, self.wait_s, self.poll_s, late)

    @staticmethod
    def _id(env: str, seed: int, digest: str, attempt: int) -> str:
        return f"{env}-s{seed}-{digest}-r{attempt}"


def served_memory(policy: str, memory: str | None) -> str | None:
    """The memory spec workers get: `model:NAME` beside an OpenAI-compatible agent becomes the
    version's adapter on the agent's server (`openai:NAME@URL`); anything else as it is."""
    from automem.engine.policy.spec import parse_spec

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


class Worker:
    """One rollout worker: a member of the `rollout-workers` group with one loaded policy.

    On Kafka the group gives each request to one live member at a time. The embedded LMDB
    bus has no groups: run a single worker per store there (`automem run --workers N` is
    the embedded way to parallelise), or two would redo each other's live attempts.
    """

    def __init__(self, log: EventLog, policy_spec: str | None, worker_id: str | None = None,
                 memory_policy_spec: str | None = None, data: Path | None = None, concurrency: int = 1) -> None:
        """`data`: the local folder model versions' adapters are found in (`model:NAME` specs)."""
        self.log, self.data = log, data
        self.concurrency = check_concurrency(concurrency)
        self.writes = grouped(log)  # episodes' steps (embedded store); the rollout stories are written at once
        self.policy_spec, self.memory_policy_spec = policy_spec, memory_policy_spec
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self._policies: dict[tuple[str, str | None], tuple[Policy, Policy | None]] = {}

    def _pair(self, spec: str, memory_spec: str | None) -> tuple[Policy, Policy | None]:
        """The loaded action and memory models of one (spec, memory spec): the memory model is
        a model of its own even when both roles name the same spec."""
        from automem.engine.policy.spec import make_policies

        if (spec, memory_spec) not in self._policies:
            self._policies[spec, memory_spec] = make_policies(spec, memory_spec, self.log, self.data)
        return self._policies[spec, memory_spec]

    def handle(self, req: RolloutRequested) -> str:
        """Run the request unless it is already done; returns its completed episode id."""
        (episode,) = drive([self.job(req)], 1)
        return episode

    def job(self, req: RolloutRequested) -> Generator[Call, Completion, str]:
        """The request as a job for the rollout driver; returns its completed episode id."""
        from automem.engine.envs import make_env

        done = completed(self.log, req.request_id)
        if done is not None:
            return done
        attempt = _abandon_unfinished(self.log, req.request_id, self.worker_id)
        episode = f"{req.request_id}-a{attempt}"
        stream = rollout_stream(req.request_id)
        self.log.append(stream, self.log.head(stream), [RolloutAttempted(
            request_id=req.request_id, episode=episode, worker=self.worker_id)])
        spec = self.policy_spec or req.policy
        memory_spec = self.memory_policy_spec or req.memory_policy
        structure, version = resolve_structure(self.log, req.env, req.structure or "auto", spec)
        policies = self._pair(spec, memory_spec)
        yield from episode_job(self.log, EpisodeSpec(episode, make_env(req.env, req.task), req.seed, req.max_steps,
                                                     structure, version, sampling=Sampling(req.temperature, req.top_p)),
                               *policies, writes=self.writes)
        self.log.append(stream, self.log.head(stream), [RolloutCompleted(request_id=req.request_id, episode=episode)])
        return completed(self.log, req.request_id) or episode

    def _reported(self, req: RolloutRequested) -> Generator[Call, Completion, str | None]:
        """The job, its outcome on stderr; a bad request is skipped (None), never stopping the worker
        or coming back forever."""
        try:
            episode = yield from self.job(req)
        except UserError as exc:
            print(f"[worker {self.worker_id}] {req.request_id} skipped: {exc}", file=sys.stderr, flush=True)
            stream = rollout_stream(req.request_id)
            self.log.append(stream, self.log.head(stream), [RolloutFailed(
                request_id=req.request_id, reason=(str(exc).splitlines() or ["bad request"])[0], worker=self.worker_id)])
            return None
        print(f"[worker {self.worker_id}] {req.request_id} -> {episode}", file=sys.stderr, flush=True)
        return episode

    def run(self, stop: threading.Event, until_idle: bool = False) -> int:
        """Process requests until stopped (or, with until_idle, until none are left)."""
        sub = self.log.subscribe(("rollout",), group="rollout-workers")
        handled = 0
        try:
            while not stop.is_set():
                records = sub.poll(max_records=self.concurrency, timeout_s=1.0)
                requests = [rec.event for rec in records if isinstance(rec.event, RolloutRequested)]
                handled += sum(e is not None for e in drive(map(self._reported, requests), self.concurrency))
                if records:
                    sub.commit()  # only now: a worker killed mid-episode leaves the request to the group
                if not records and until_idle and sub.lag() == 0:
                    break
        finally:
            sub.close()
        return handled


def status(log: EventLog) -> list[dict]:
    """Per request: its completed episode (None while pending) and the number of attempts."""
    rows = []
    for stream in log.streams("rollout"):
        events = [r.event for r in log.read_stream(stream)]
        done = next((e.episode for e in events if isinstance(e, RolloutCompleted)), None)
        rows.append({"request": request_of(stream), "episode": done,
                     "attempts": sum(isinstance(e, RolloutAttempted) for e in events)})
    return rows
