"""Running episodes: resolve the structure, build env and policies, fan out to workers.

Each worker process opens its own handle on the log (LMDB serialises the writers), loads
its policy once and keeps up to `concurrency` episodes in flight, their model calls
batched (engine/rollout); progress comes back over a queue to one bar on stderr.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from queue import Empty
from typing import Any, Callable, Generator, Iterable

from tqdm import tqdm

from automem.engine import envs
from automem.engine.agent.baseline import make_episode
from automem.engine.agent.episode import Call, EpisodeSpec, Machine
from automem.engine.episodes.leases import episode_lease
from automem.engine.episodes.summary import EpisodeSummary, summarize
from automem.engine.episodes.timetravel import materialize
from automem.engine.log import local_folder, open_log
from automem.engine.log.port import EventLog
from automem.engine.models.load import make_policies
from automem.engine.models.registry import resolve, verified_adapter
from automem.engine.policy.base import Completion, Policy
from automem.engine.policy.spec import make_policy
from automem.engine.rollout.drive import drive
from automem.engine.rollout.request import RunRequest
from automem.engine.structure.registry import resolve_structure
from automem.schemas.errors import UserError
from automem.schemas.ids import new_episode_id
from automem.schemas.version import ENGINE_VERSION


def episode_job(log: EventLog, spec: EpisodeSpec, policy: Policy, memory_policy: Policy | None,
                on_step: Callable[[int], None] | None = None, writes: EventLog | None = None) -> Machine:
    """One episode as a job for the rollout driver: its lease on `log` while it runs, its
    env closed after; returns how it ended. Its events go through `writes` when given (the
    log grouped), flushed before the end is returned: nobody hears of an episode not yet durable."""
    writes = writes or log
    try:
        with episode_lease(log, spec.episode):
            ended = yield from make_episode(writes, spec, policy, memory_policy, ENGINE_VERSION).steps(on_step)
            writes.flush()
    finally:
        spec.env.close()
    return ended


def play(log: EventLog, req: RunRequest, policy: Policy, memory_policy: Policy | None, share: Iterable[int],
         progress: Any | None = None) -> list[EpisodeSummary]:
    """Episodes `share` of the request (episode i plays `req.seed_of(i)`) with policies
    already loaded, up to `req.concurrency` at a time, their steps group-committed."""

    structure, version = resolve_structure(log, req.env, req.structure, req.policy)
    writes = log.grouped()
    on_step = (lambda _n: progress.put(("steps", 1))) if progress is not None else None

    def job(i: int) -> Generator[Call, Completion, EpisodeSummary]:
        seed = req.seed_of(i)
        spec = EpisodeSpec(new_episode_id(req.env, seed), envs.make_env(req.env, req.task, req.agent.observation), seed,
                           req.max_steps, structure, version, sampling=req.sampling, agent=req.agent)
        yield from episode_job(log, spec, policy, memory_policy, on_step, writes)
        return finish(log, spec.episode)

    try:
        return drive((job(i) for i in share), req.concurrency,
                     (lambda n: progress.put(("flight", n))) if progress is not None else None)
    finally:
        writes.flush()  # a run that stopped early: what its episodes did so far is still written


def _run_some(req: RunRequest, share: range, progress: Any | None) -> list[EpisodeSummary]:
    """Worker body: one log handle and one policy load for a share of the episodes."""
    with open_log(req.bus, req.data) as log:
        policy, memory_policy = make_policies(req.policy, req.memory_policy, log, local_folder(req.bus, req.data))
        return play(log, req, policy, memory_policy, share, progress)


def finish(log: EventLog, episode_id: str) -> EpisodeSummary:
    """After an episode: its snapshots where the log keeps them (on Kafka the materializer does it), its summary."""
    snapshots = log.snapshots()
    if snapshots is not None:
        materialize(log, snapshots, episode_id)
    return summarize(log, episode_id)


class StepBar:
    """A step bar on stderr (steps per second, episodes in flight), drawn from the first
    finished step on: errors before any work stay the single line the CLI promises. Also
    the in-process stand-in for the queue: items are ("steps", n) and ("flight", n) per
    worker process."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc = total, desc
        self.bar: tqdm | None = None
        self.flight: dict[int, int] = {}

    def put(self, item: tuple[str, int], sender: int = 0) -> None:
        kind, n = item
        if kind == "flight":
            self.flight[sender] = n
            if self.bar is not None:
                self.bar.set_postfix_str(f"{sum(self.flight.values())} in flight", refresh=False)
            return
        if self.bar is None:
            self.bar = tqdm(total=self.total, desc=self.desc, unit="step")
            self.bar.set_postfix_str(f"{sum(self.flight.values())} in flight", refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Sender:
    """A worker process's end of the progress queue: its items carry which worker sent them."""

    def __init__(self, queue: Any, worker: int) -> None:
        self.queue, self.worker = queue, worker

    def put(self, item: tuple[str, int]) -> None:
        self.queue.put((item, self.worker))


def run(req: RunRequest) -> list[EpisodeSummary]:
    """Run `req.episodes` episodes (seeds seed, seed+1, ...), in worker processes if asked."""
    checked = req.check()  # before any work
    workers = max(1, min(req.workers, req.episodes))
    for spec, parsed in checked.specs():
        if parsed.kind == "file":
            policy = make_policy(spec)  # a missing or malformed file fails now, before the store is created
            if (workers > 1 or req.concurrency > 1) and not getattr(policy, "keyed"):
                raise UserError(f"--policy {spec} is one cursor over its answers for the whole run: run it with "
                                '--workers 1 --concurrency 1, or give every line a "seed" to script each episode')
    with open_log(req.bus, req.data) as log:
        resolve_structure(log, req.env, req.structure, req.policy)
        for _, parsed in checked.specs():
            if parsed.kind == "model":  # an unknown version or a changed adapter: refused before any work
                verified_adapter(local_folder(req.bus, req.data), resolve(log, parsed.target))
    bar = StepBar(req.episodes * req.max_steps, f"{req.env} x{req.episodes}")
    try:
        if workers == 1:
            return _run_some(req, range(req.episodes), bar)
        ctx = get_context("spawn")
        with ctx.Manager() as manager:
            queue = manager.Queue()
            threads = max(1, (os.cpu_count() or 1) // workers)
            os.environ.setdefault("AUTOMEM_TORCH_THREADS", str(threads))
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                futures = [pool.submit(_run_some, req, range(i, req.episodes, workers), _Sender(queue, i))
                           for i in range(workers)]
                while not all(f.done() for f in futures):
                    try:
                        bar.put(*queue.get(timeout=0.2))
                    except Empty:
                        pass
                results = [s for f in futures for s in f.result()]
            order = {req.seed_of(i): i for i in range(req.episodes)}
            return sorted(results, key=lambda s: order[s.seed])
    finally:
        bar.close()
