"""The event-log port: the one interface every backend (LMDB, Kafka) implements.

Streams are append-only sequences identified by id; `(stream, seq)` is an event's
identity. An append names the seq it expects to write next, so two writers racing on
one stream cannot both win (optimistic concurrency, as in EventStoreDB).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

from automem.schemas.codec import LogError
from automem.schemas.events import AnyEvent, Recorded

if TYPE_CHECKING:  # for the annotation only: the port imports no backend
    from automem.engine.log.lmdb.snapshots import SnapshotStore


class ConflictError(LogError):
    """The stream's next seq was not the one the writer expected."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(
            f"append conflict on {stream}: expected next seq {expected}, the stream is at {actual}; "
            "another writer got there first (re-read the stream and retry)"
        )
        self.stream = stream
        self.expected = expected
        self.actual = actual


class MissingData(LogError):
    """There is no log where the user pointed."""


class CannotMap(LogError):
    """LMDB could not map the store into memory: a limit of this process, not damage."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"could not map the store at {path} into memory ({reason}): the process's address space is "
                         "limited (ulimit -v) or memory is short; the store is not damaged: raise the limit and re-run")


class DamagedStore(LogError):
    """The store's file is damaged: refused before LMDB touches it, or LMDB itself failed."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(
            f"the store at {path} is damaged ({reason}); nothing was written to it: run `automem store check "
            f"--data {path}` for a full report and restore a backup with `automem store restore BACKUP --data {path}`"
        )
        self.path = path


class NotAStore(MissingData):
    """An LMDB file that automem did not make: left untouched."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path} is not a valid automem data directory ({reason}); nothing was written to it: "
                         "point --data at an automem store")
        self.path = path


class EventLog(Protocol):
    url: str  # the bus URL this log answers to: consumer positions are only valid on it
    def append(self, stream: str, expected_seq: int, events: Sequence[AnyEvent]) -> int:
        """Append a batch atomically at `expected_seq`; return the stream's next seq."""
        ...

    def head(self, stream: str) -> int:
        """The next seq of a stream (0 for a stream that does not exist)."""
        ...

    def read_stream(self, stream: str, from_seq: int = 0) -> Iterator[Recorded]:
        ...

    def streams(self, family: str) -> list[str]:
        """Stream ids of one family (e.g. "ep"), sorted."""
        ...

    def subscribe(self, families: tuple[str, ...], group: str | None = None) -> Subscription:
        """Follow new events of some stream families. With `group`, instances sharing the
        name split the work between them (a Kafka consumer group); without, one reader sees all."""
        ...

    def flush(self) -> None:
        """Make every append so far durable: a no-op where each append already is on return
        (LMDB, Kafka, memory); group commit writes what it buffered."""
        ...

    def grouped(self) -> EventLog:
        """This log for many fast appends (an episode's steps): group commit where batches
        can share one durable transaction (the embedded store); the log itself where each
        append is its own acknowledged send anyway (Kafka: grouping would only add a loss
        window) or is never durable (memory). Flush it before reporting anything written."""
        ...

    def lease_folder(self) -> Path | None:
        """Where the processes writing this log's episodes on this machine hold their leases
        (engine.episodes.leases): the embedded store's folder; None where the writers may be
        on other machines (Kafka) or nothing outlives the process (memory)."""
        ...

    def snapshots(self) -> SnapshotStore | None:
        """The memory snapshots kept with this log's events, when the log is the local store
        that keeps them; None where the materializer keeps them (Kafka) or none are kept."""
        ...

    def close(self) -> None:
        ...

    def __enter__(self) -> EventLog:
        ...

    def __exit__(self, *exc: object) -> None:
        ...


class Subscription(Protocol):
    """A cursor over the log. Its position is an opaque token that a consumer stores with
    its derived state, in one transaction, and seeks back to after a restart."""

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Recorded]:
        ...

    def position(self) -> bytes:
        """Where the next poll continues: after every record returned so far."""
        ...

    def seek(self, position: bytes) -> None:
        ...

    def commit(self) -> None:
        """Tell the backend the work up to `position()` is done (group bookkeeping)."""
        ...

    def lag(self) -> int | None:
        """How many records (LMDB: events; Kafka: messages) wait unpolled; None: not known yet."""
        ...

    def close(self) -> None:
        ...



def last_event(log: EventLog, stream: str) -> AnyEvent | None:
    """The stream's newest event, read alone (None for an empty stream)."""
    head = log.head(stream)
    return next(iter(log.read_stream(stream, head - 1))).event if head else None


def append_once(log: EventLog, stream: str, event: AnyEvent) -> bool:
    """Append `event` as the first and only event of `stream` (content-addressed things:
    datasets, model versions); False when the stream already holds one."""
    if log.head(stream):
        return False
    try:
        log.append(stream, 0, [event])
    except ConflictError:
        return False  # another writer announced it first
    return True


def append_at_head(log: EventLog, stream: str, events: Sequence[AnyEvent]) -> int:
    """Append a batch that stands alone (its place in the stream does not matter) at the head,
    trying again at the new head when another writer appended first."""
    while True:
        try:
            return log.append(stream, log.head(stream), events)
        except ConflictError:
            continue


def append_read_back(log: EventLog, stream: str, expected_seq: int, events: Sequence[AnyEvent]) -> int:
    """Append, then read the batch back: Kafka has no compare-and-set, so a second writer at the
    same seq (two drivers of one loop, two promotions at once) shows only when reading, where the
    first batch stored wins. A ConflictError says this one lost; on LMDB the append itself says so."""
    head = log.append(stream, expected_seq, events)
    stored = [r.event for r in log.read_stream(stream, expected_seq)][:len(events)]
    if stored != list(events):
        raise ConflictError(stream, expected_seq, log.head(stream))
    return head
