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

import sys
import threading
from pathlib import Path
from typing import Generator

from automem.engine import envs
from automem.engine.agent.episode import Call, EpisodeSpec
from automem.engine.log.port import EventLog
from automem.engine.models.load import make_policies
from automem.engine.policy.base import Completion, Policy
from automem.engine.policy.sampling import Sampling
from automem.engine.rollout.drive import drive
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import episode_job
from automem.engine.structure.registry import resolve_structure
from automem.schemas import ids
from automem.schemas.errors import UserError
from automem.schemas.events import (
    EpisodeAbandoned,
    EpisodeEnded,
    RolloutAttempted,
    RolloutCompleted,
    RolloutFailed,
    RolloutRequested,
)
from automem.schemas.limits import check_concurrency
from automem.schemas.streams import episode_stream, request_of, rollout_stream


def submit(log: EventLog, req: RunRequest) -> list[str]:
    """Publish one RolloutRequested per episode of `req` (seeds seed, seed+1, ...); returns the ids."""
    task = req.check().task
    resolve_structure(log, req.env, req.structure, req.policy)  # an unknown structure is refused now, not by every worker
    published = []
    for i in range(req.episodes):
        seed = req.seed + i
        request_id = ids.new_request_id(req.env, seed)
        log.append(rollout_stream(request_id), 0, [RolloutRequested(
            request_id=request_id, env=req.env, task=task, seed=seed, max_steps=req.max_steps, policy=req.policy,
            memory_policy=req.memory_policy, structure=req.structure, temperature=req.sampling.temperature,
            top_p=req.sampling.top_p, agent=req.agent)])
        published.append(request_id)
    return published


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
        self.writes = log.grouped()  # episodes' steps; the rollout stories are written at once
        self.policy_spec, self.memory_policy_spec = policy_spec, memory_policy_spec
        self.worker_id = worker_id or ids.worker_id()
        self._policies: dict[tuple[str, str | None], tuple[Policy, Policy | None]] = {}

    def _pair(self, spec: str, memory_spec: str | None) -> tuple[Policy, Policy | None]:
        """The loaded action and memory models of one (spec, memory spec): the memory model is
        a model of its own even when both roles name the same spec."""
        if (spec, memory_spec) not in self._policies:
            self._policies[spec, memory_spec] = make_policies(spec, memory_spec, self.log, self.data)
        return self._policies[spec, memory_spec]

    def handle(self, req: RolloutRequested) -> str:
        """Run the request unless it is already done; returns its completed episode id."""
        (episode,) = drive([self.job(req)], 1)
        return episode

    def job(self, req: RolloutRequested) -> Generator[Call, Completion, str]:
        """The request as a job for the rollout driver; returns its completed episode id."""
        done = completed(self.log, req.request_id)
        if done is not None:
            return done
        attempt = _abandon_unfinished(self.log, req.request_id, self.worker_id)
        episode = ids.attempt_episode_id(req.request_id, attempt)
        stream = rollout_stream(req.request_id)
        self.log.append(stream, self.log.head(stream), [RolloutAttempted(
            request_id=req.request_id, episode=episode, worker=self.worker_id)])
        spec = self.policy_spec or req.policy
        memory_spec = self.memory_policy_spec or req.memory_policy
        structure, version = resolve_structure(self.log, req.env, req.structure or "auto", spec)
        policies = self._pair(spec, memory_spec)
        env = envs.make_env(req.env, req.task, req.agent.observation)
        yield from episode_job(self.log, EpisodeSpec(episode, env, req.seed, req.max_steps, structure, version,
                                                     sampling=Sampling(req.temperature, req.top_p), agent=req.agent),
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
