"""The event-log port in process memory: for replays (which must not write to the store)
and for anything that wants a throwaway log."""

from __future__ import annotations

import time
from typing import Iterator, Sequence

from automem.engine.log.lmdb.log import OffsetSubscription
from automem.engine.log.port import ConflictError
from automem.schemas.events import AnyEvent, Recorded
from automem.schemas.streams import check_stream
from automem.schemas.streams import family as family_of


class MemoryLog:
    url = "memory://"

    def __init__(self) -> None:
        self.records: list[Recorded] = []
        self.by_stream: dict[str, list[Recorded]] = {}

    def append(self, stream: str, expected_seq: int, events: Sequence[AnyEvent]) -> int:
        records = self.by_stream.setdefault(check_stream(stream), [])
        if len(records) != expected_seq:
            raise ConflictError(stream, expected_seq, len(records))
        ts = time.time()  # informational only
        for event in events:
            rec = Recorded(len(self.records), stream, len(records), ts, event)
            self.records.append(rec)
            records.append(rec)
        return len(records)

    def head(self, stream: str) -> int:
        return len(self.by_stream.get(stream, ()))

    def read_stream(self, stream: str, from_seq: int = 0) -> Iterator[Recorded]:
        yield from self.by_stream.get(stream, [])[max(from_seq, 0):]

    def streams(self, family: str) -> list[str]:
        return sorted(s for s in self.by_stream if family_of(s) == family)

    def subscribe(self, families: tuple[str, ...], group: str | None = None) -> MemorySubscription:
        return MemorySubscription(self, families)

    def flush(self) -> None:
        """Nothing to do: nothing here is ever durable."""

    def grouped(self) -> MemoryLog:
        """Itself: nothing here is durable, so there is nothing to group."""
        return self

    def lease_folder(self) -> None:
        """None: nothing outlives the process."""

    def snapshots(self) -> None:
        """None: replays fold memory as they go."""

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> MemoryLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemorySubscription(OffsetSubscription):
    def __init__(self, log: MemoryLog, families: tuple[str, ...]) -> None:
        super().__init__(families)
        self.log = log

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Recorded]:
        out: list[Recorded] = []
        while self.next < len(self.log.records) and len(out) < max_records:
            rec = self.log.records[self.next]
            self.next += 1
            if rec.stream.startswith(self.prefixes):
                out.append(rec)
        return out

    def lag(self) -> int:
        return len(self.log.records) - self.next
