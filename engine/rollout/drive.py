"""Many episodes in flight in one process: a driver over episode step machines.

Each job is a generator that yields the model calls it waits on (`Episode.steps`, with
whatever it needs around it: an env, a lease, a summary at the end). The driver keeps up
to `concurrency` jobs in flight, answers their pending calls together (`complete_all`:
one decode batch, or requests in flight together, per backend) and hands each job its
answer. Jobs start in order and the round order is fixed, so a run is deterministic; an
episode's events depend only on its own answers, never on its neighbours.
"""

from __future__ import annotations

from typing import Callable, Generator, Iterable, Iterator, TypeVar

from automem.engine.agent.episode import Call, advance
from automem.engine.policy.base import Completion, complete_all

T = TypeVar("T")
Job = Generator[Call, Completion, T]


def drive(jobs: Iterable[Job[T]], concurrency: int, in_flight: Callable[[int], None] | None = None) -> list[T]:
    """Run every job, up to `concurrency` at once; their results in job order.

    `in_flight(n)` hears how many jobs are in flight whenever that changes. An exception
    other than a job's own end (a log that cannot be written) closes every job in flight
    (their envs and leases are released by their own finally blocks) and propagates.
    """
    pending: Iterator[Job[T]] = iter(jobs)
    results: dict[int, T] = {}
    active: list[tuple[int, Job[T], Call]] = []
    started, shown = 0, -1
    try:
        while True:
            while len(active) < concurrency and (job := next(pending, None)) is not None:
                index, started = started, started + 1
                try:
                    active.append((index, job, next(job)))
                except StopIteration as done:
                    results[index] = done.value
            if in_flight is not None and len(active) != shown:
                shown = len(active)
                in_flight(shown)
            if not active:
                return [results[i] for i in range(started)]
            answers = complete_all([call for _, _, call in active])
            still = []
            for (index, job, _), reply in zip(active, answers):
                try:
                    still.append((index, job, advance(job, reply)))
                except StopIteration as done:
                    results[index] = done.value
            active = still
    except BaseException:
        for _, job, _ in active:
            job.close()
        raise
