"""Group commit: many step batches in one durable transaction, for fast steps only.

`GroupCommit(log)` implements the whole EventLog port around another log. An append is
checked against the stream's head as the wrapper sees it (the backend's head plus what
is buffered), buffered, and then every buffered batch is committed in ONE transaction
(`append_many` where the backend has it, else batch by batch) as soon as

  * `window_s` or more (monotonic clock) has passed since the end of the last commit:
    a step slower than the window (every real model step) is committed at once, or
  * `max_batches` batches are buffered.

`flush()` (the port's, a no-op on the backends themselves) commits now; reads (`head`,
`read_stream`, `streams`, `subscribe` and the subscription's `poll`/`lag`), anything
reached through the wrapper on the backend itself (`path`, `read_all`, `save_position`,
...), and `close`/`__exit__` flush first, so nothing buffered is ever invisible to a
reader in this process. The clock only decides when batches become durable, never what
they contain.

Crash bound. A batch is never split, and batches are committed in the order they were
appended, so a SIGKILL (or a power cut, with an fsynced backend) loses only whole batches,
and only the latest ones: every stream keeps a prefix of its batches and still replays.
The batches lost are exactly those buffered at the crash: at most `max_batches - 1` of
them (31 by default), all appended less than `window_s` (50 ms) after the end of the last
commit. An episode appends one batch per step, so that is at most `max_batches - 1`
whole steps. The loss is bounded in batches and in how close together they were
appended, not in how long before the crash: a batch buffered just before a long model
call stays buffered until the next append, flush or read. Callers flush when an episode
ends and before they report anything as written.

Conflicts. The head check at append catches a conflict with what this process knows.
Another writer can still take a seq between that check and the commit: then the backend's
transaction aborts, and the wrapper commits the other batches again without the bad one
and without the later buffered batches of the same stream (they were built on it), and
raises that ConflictError from the call that committed (an append of any stream, a
flush, a read or close). Nothing else is lost. A failed commit for another reason (a
full disk) raises too; the batch of the append that triggered it is dropped (that append
failed, as it would unwrapped) and the batches acknowledged before stay buffered for
the next commit.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from automem.engine.log.port import ConflictError, EventLog, Subscription
from automem.schemas.events import AnyEvent, Recorded

if TYPE_CHECKING:
    from automem.engine.log.lmdb.snapshots import SnapshotStore

Batch = tuple[str, int, Sequence[AnyEvent]]

DEFAULT_WINDOW_S = 0.05
DEFAULT_MAX_BATCHES = 32


class GroupCommit:
    """The EventLog port over `log`, committing buffered batches in groups (see the module)."""

    def __init__(self, log: EventLog, window_s: float = DEFAULT_WINDOW_S, max_batches: int = DEFAULT_MAX_BATCHES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window_s < 0 or max_batches < 1:
            raise ValueError(f"window_s must be >= 0 and max_batches >= 1 (got {window_s}, {max_batches})")
        self.log, self.window_s, self.max_batches, self.clock = log, window_s, max_batches, clock
        self.url = log.url
        self._pending: list[Batch] = []
        self._heads: dict[str, int] = {}  # streams with buffered batches -> their head after them
        self._last_commit = clock()
        self._lock = threading.RLock()
        self._closed = False
        self.commits = 0  # backend transactions made (figures and tests)

    @property
    def pending(self) -> int:
        """Batches appended and not yet committed."""
        return len(self._pending)

    # -------------------------------------------------------------------- writing

    def append(self, stream: str, expected_seq: int, events: Sequence[AnyEvent]) -> int:
        with self._lock:
            head = self._heads.get(stream)
            if head is None:
                head = self.log.head(stream)
            if head != expected_seq:
                raise ConflictError(stream, expected_seq, head)
            if not events:
                return head
            batch = (stream, expected_seq, list(events))  # the caller may reuse its list
            self._pending.append(batch)
            self._heads[stream] = new = head + len(events)
            if len(self._pending) >= self.max_batches or self.clock() - self._last_commit >= self.window_s:
                self._commit(batch)
            return new

    def flush(self) -> None:
        """Commit every buffered batch now (one transaction)."""
        with self._lock:
            self._commit(None)

    def _commit(self, current: Batch | None) -> None:
        """Commit the buffer; `current`: the batch of the append that asked for it."""
        if not self._pending:
            return
        batches, conflict = list(self._pending), None
        try:
            while batches:
                try:
                    self._write(batches)
                    break
                except ConflictError as exc:
                    conflict = conflict or exc
                    batches = _without(batches, exc)
        except BaseException:
            self._pending = [b for b in batches if b is not current]
            self._heads = _heads_after(self._pending)
            raise
        self._pending, self._heads = [], {}
        self._last_commit = self.clock()
        if conflict is not None:
            raise conflict

    def _write(self, batches: list[Batch]) -> None:
        """Write `batches`; when it raises, `batches` is left holding what was not written."""
        many = getattr(self.log, "append_many", None)
        if many is not None:
            many(batches)  # one transaction: all or nothing
            self.commits += 1
            batches.clear()
            return
        while batches:  # no group transaction on this backend: batch by batch
            stream, seq, events = batches[0]
            self.log.append(stream, seq, events)
            self.commits += 1
            del batches[0]

    # -------------------------------------------------------------------- reading

    def head(self, stream: str) -> int:
        self.flush()
        return self.log.head(stream)

    def read_stream(self, stream: str, from_seq: int = 0) -> Iterator[Recorded]:
        self.flush()  # now, not at the iterator's first step
        return self.log.read_stream(stream, from_seq)

    def streams(self, family: str) -> list[str]:
        self.flush()
        return self.log.streams(family)

    def subscribe(self, families: tuple[str, ...], group: str | None = None) -> Subscription:
        self.flush()
        return _FlushingSubscription(self, self.log.subscribe(families, group))

    def grouped(self) -> GroupCommit:
        """Itself: already grouped."""
        return self

    def lease_folder(self) -> Path | None:
        return self.log.lease_folder()

    def snapshots(self) -> SnapshotStore | None:
        self.flush()
        return self.log.snapshots()

    def __getattr__(self, name: str) -> Any:
        """The backend's own API (LmdbLog.path, read_all, save_position, ...), after a flush."""
        if name.startswith("_") or name in ("log", "clock"):
            raise AttributeError(name)
        self.flush()
        return getattr(self.log, name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self.log.close()

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FlushingSubscription:
    """A backend subscription whose polls first commit what the wrapper buffered."""

    def __init__(self, group: GroupCommit, sub: Subscription) -> None:
        self.group, self.sub = group, sub

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Recorded]:
        self.group.flush()
        return self.sub.poll(max_records, timeout_s)

    def lag(self) -> int | None:
        self.group.flush()
        return self.sub.lag()

    def position(self) -> bytes:
        return self.sub.position()

    def seek(self, position: bytes) -> None:
        self.sub.seek(position)

    def commit(self) -> None:
        self.sub.commit()

    def close(self) -> None:
        self.sub.close()


def backend(log: EventLog) -> EventLog:
    """The log under any GroupCommit wrappers."""
    while isinstance(log, GroupCommit):
        log = log.log
    return log


def _without(batches: list[Batch], exc: ConflictError) -> list[Batch]:
    """The batches minus the conflicting one and the later ones of its stream."""
    out, dropping = [], False
    for batch in batches:
        stream, seq, _ = batch
        if stream == exc.stream and (dropping or seq == exc.expected):
            dropping = True
            continue
        out.append(batch)
    if not dropping:  # not one of ours (cannot happen): drop the stream's batches rather than loop
        out = [b for b in batches if b[0] != exc.stream]
    return out


def _heads_after(batches: list[Batch]) -> dict[str, int]:
    heads: dict[str, int] = {}
    for stream, seq, events in batches:
        heads[stream] = seq + len(events)
    return heads
