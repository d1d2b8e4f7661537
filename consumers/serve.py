"""The services as processes, as `automem consume` and `automem worker` start them: each runs
until SIGTERM/SIGINT (the batch in hand finishes) or, with until_idle, until nothing is left."""

from __future__ import annotations

import threading

from automem.consumers.runtime import Stats, run_consumer, stop_on_signals
from automem.consumers.services import make_consumer
from automem.engine.log import local_folder, open_log, open_store
from automem.engine.rollout.bus import Worker


def serve_consumer(name: str, bus: str | None, data: str | None, until_idle: bool, every: int,
                   vllm: str | None, adapter_root: str | None) -> Stats:
    """Run the consumer `name`; its state and position live in the local store."""
    consumer = make_consumer(name, local_folder(bus, data), every=every, vllm=vllm, adapter_root=adapter_root)
    with open_log(bus, data) as log, open_store(bus, data) as store:
        return run_consumer(consumer, log, store, until_idle=until_idle)


def serve_worker(bus: str | None, data: str | None, policy: str | None, memory_policy: str | None,
                 concurrency: int, until_idle: bool) -> int:
    """Run a rollout worker; returns the requests it handled (one completed episode each)."""
    stop = threading.Event()
    stop_on_signals(stop)
    with open_log(bus, data) as log:
        return Worker(log, policy, memory_policy_spec=memory_policy, data=local_folder(bus, data),
                      concurrency=concurrency).run(stop, until_idle=until_idle)
