"""The generic consumer runner: poll, apply effects, commit, repeat, until told to stop.

A consumer's derived state and the position it consumed up to are written in ONE
transaction of its local LMDB store (a `Batch`: the consumer puts its state, the runner
the position), so a crash at any point leaves them in step and a restart resumes exactly
where the state says (the exactly-once recipe of EventStoreDB's clients). Records that
do not decode are kept as DeadLettered events, and the consumer carries on with the next
one.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Protocol

import msgspec

from automem.engine.log.lmdb.batch import StoreBatch
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.port import EventLog
from automem.engine.memory.snapshot import Snapshot
from automem.schemas.events import DeadLettered, Recorded
from automem.schemas.streams import deadletter_stream


class State(Protocol):
    """A consumer's own keys in its local store (its cursors), read."""

    path: Path  # names the store in error messages

    def meta(self, key: bytes) -> bytes | None:
        ...


class Batch(State, Protocol):
    """One write to the consumer's local store; the runner saves the position the records
    were consumed up to in the same write, so what a consumer puts here lands with that
    position or not at all."""

    def put_meta(self, key: bytes, value: bytes) -> None:
        ...

    def put_snapshot(self, episode: str, snap: Snapshot) -> None:
        ...

    def save_position(self, consumer: str, token: bytes) -> None:
        ...


class Consumer(Protocol):
    name: str

    @property
    def families(self) -> tuple[str, ...]:
        """The stream families it follows."""
        ...

    def emit(self, records: list[Recorded], log: EventLog) -> None:
        """Append the records' effects to the log, before the position is saved: idempotent
        (expected seq, nothing written twice), so a redelivered batch changes nothing."""
        ...

    def handle(self, records: list[Recorded], batch: Batch) -> None:
        """Apply the records' effects to the local store through `batch` (committed with the position)."""
        ...


class Stats(msgspec.Struct):
    consumer: str
    events: int = 0
    batches: int = 0
    dead_letters: int = 0
    seconds: float = 0.0


def position_key(consumer: Consumer, log: EventLog) -> str:
    """Positions are tokens of one bus: keyed by its URL, a store can follow several."""
    return f"consumer/{consumer.name}@{log.url}"


def run_consumer(
    consumer: Consumer, log: EventLog, store: LmdbLog, *, stop: threading.Event | None = None,
    until_idle: bool = False, batch: int = 500, poll_s: float = 1.0, report_every_s: float = 10.0,
) -> Stats:
    """Run until `stop` is set, SIGTERM/SIGINT arrives, or (with until_idle) nothing is left."""
    stop = stop or threading.Event()
    stop_on_signals(stop)
    stats = Stats(consumer.name)
    key = position_key(consumer, log)
    sub = log.subscribe(consumer.families)
    start = last_report = time.monotonic()
    try:
        sub.seek(store.load_position(key))
        while not stop.is_set():
            records = sub.poll(max_records=batch, timeout_s=poll_s)
            if records:
                good = [r for r in records if not isinstance(r.event, DeadLettered)]
                for bad in [r.event for r in records if isinstance(r.event, DeadLettered)]:
                    _dead_letter(log, consumer, bad)
                    stats.dead_letters += 1
                consumer.emit(good, log)
                with StoreBatch.write(store) as writing:
                    consumer.handle(good, writing)
                    writing.save_position(key, sub.position())
                sub.commit()
                stats.events += len(good)
                stats.batches += 1
            elif until_idle and sub.lag() == 0:
                break
            now = time.monotonic()
            if now - last_report >= report_every_s:
                rate = stats.events / max(now - start, 1e-9)
                print(f"[{consumer.name}] events={stats.events} rate={rate:.0f}/s lag={sub.lag()} "
                      f"dead_letters={stats.dead_letters}", file=sys.stderr, flush=True)
                last_report = now
    finally:
        sub.close()
    stats.seconds = time.monotonic() - start
    return stats


def _dead_letter(log: EventLog, consumer: Consumer, event: DeadLettered) -> None:
    stream = deadletter_stream(consumer.name)
    log.append(stream, log.head(stream), [event])
    print(f"[{consumer.name}] dead letter: {event.source} at {event.position}: {event.error}", file=sys.stderr, flush=True)


def stop_on_signals(stop: threading.Event) -> None:
    """Graceful shutdown: finish the batch in hand, commit, exit."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
