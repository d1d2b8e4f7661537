"""The embedded event log: one LMDB environment holding events, indexes, positions, snapshots.

Layout (named databases):
  events     u64 global offset            -> msgpack Record (append-only, keys monotonic)
  index      stream \\0 u64 seq            -> u64 offset
  heads      stream                       -> u64 next seq
  positions  consumer name                -> u64 next offset to read
  snapshots  episode \\0 u64 op position   -> encoded memory state (derived, rebuildable)

A batch is one LMDB write transaction: it is all there or not at all, even when the
writing process is SIGKILLed mid-batch. LMDB serialises writers across processes with
its lock file, so several processes on one machine can append to the same store.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import lmdb

from automem.schemas.codec import LogError, decode_record, encode_record
from automem.schemas.events import SCHEMA_VERSION, AnyEvent, DeadLettered, Record, Recorded
from automem.schemas.streams import check_stream

from .port import ConflictError, MissingData

DEFAULT_MAP_SIZE = 1 << 36  # 64 GiB of address space; the file grows only as data arrives
DB_NAMES = (b"events", b"index", b"heads", b"positions", b"snapshots", b"meta")
_FIRST_CHUNK, _MAX_CHUNK = 16, 1024  # short reads stay cheap, long scans amortise


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def from_u64(b: bytes) -> int:
    return int.from_bytes(b, "big")


def keys_with_prefix(env: lmdb.Environment, db: object, prefix: bytes) -> list[bytes]:
    """All keys of `db` that start with `prefix`, in key order."""
    out = []
    with env.begin() as txn:
        cursor = txn.cursor(db=db)
        if cursor.set_range(prefix):
            for key in cursor.iternext(values=False):
                if not key.startswith(prefix):
                    break
                out.append(bytes(key))
    return out


class _Shared:
    """LMDB forbids opening one environment twice in a process: share it, per pid."""

    lock = threading.Lock()
    envs: dict[tuple[str, int], tuple[lmdb.Environment, int]] = {}
    fsync: dict[tuple[str, int], bool] = {}


def _open_env(path: Path, fsync: bool, map_size: int) -> lmdb.Environment:
    key = (str(path), os.getpid())
    with _Shared.lock:
        found = _Shared.envs.get(key)
        if found:
            if _Shared.fsync[key] != fsync:
                raise LogError(f"{path} is already open in this process with fsync={_Shared.fsync[key]}; "
                               "open it with the same durability everywhere")
            _Shared.envs[key] = (found[0], found[1] + 1)
            return found[0]
        try:
            env = lmdb.open(
                str(path), map_size=map_size, max_dbs=len(DB_NAMES), sync=fsync,
                metasync=fsync, max_readers=256, readahead=False,
            )
        except lmdb.InvalidError as exc:
            raise LogError(f"{path} is not a valid automem data directory ({exc}); point --data at another folder") from None
        except lmdb.Error as exc:
            raise LogError(f"cannot open automem data at {path}: {exc}") from None
        _Shared.envs[key] = (env, 1)
        _Shared.fsync[key] = fsync
        return env


def _release_env(path: Path) -> None:
    key = (str(path), os.getpid())
    with _Shared.lock:
        found = _Shared.envs.get(key)
        if not found:
            return
        env, refs = found
        if refs > 1:
            _Shared.envs[key] = (env, refs - 1)
        else:
            del _Shared.envs[key]
            del _Shared.fsync[key]
            env.close()


class LmdbLog:
    """The EventLog port on LMDB. `fsync=False` trades power-loss safety for speed."""

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, fsync: bool = True,
        map_size: int = DEFAULT_MAP_SIZE,
    ) -> None:
        self.path = Path(path).resolve()
        if self.path.exists() and not self.path.is_dir():
            raise MissingData(f"{self.path} is a file, not an automem data directory; pass --data DIR")
        if not create and not (self.path / "data.mdb").exists():
            raise MissingData(
                f"no automem data at {self.path}: run `automem run` first or point --data/$AUTOMEM_DATA at your store"
            )
        if create:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MissingData(f"cannot create data directory {self.path}: {exc.strerror}") from None
        if not os.access(self.path, os.R_OK | os.W_OK | os.X_OK):
            raise MissingData(f"data directory {self.path} is not readable and writable by this user; fix its permissions")
        self.url = f"lmdb://{self.path}"
        self.env = _open_env(self.path, fsync, map_size)
        with self.env.begin(write=True) as txn:
            self.dbs = {name.decode(): self.env.open_db(name, txn=txn) for name in DB_NAMES}
        self._events = self.dbs["events"]
        self._index = self.dbs["index"]
        self._heads = self.dbs["heads"]
        self._positions = self.dbs["positions"]
        self._closed = False

    # -------------------------------------------------------------------- writing

    def append(self, stream: str, expected_seq: int, events: Sequence[AnyEvent]) -> int:
        skey = check_stream(stream).encode("utf-8")
        ts = time.time()  # informational only
        with self.env.begin(write=True) as txn:
            raw = txn.get(skey, db=self._heads)
            head = from_u64(raw) if raw else 0
            if head != expected_seq:
                raise ConflictError(stream, expected_seq, head)
            if not events:
                return head
            cursor = txn.cursor(db=self._events)
            offset = from_u64(cursor.key()) + 1 if cursor.last() else 0
            records = []
            index = []
            prefix = skey + b"\x00"
            for i, event in enumerate(events):
                at = u64(offset + i)
                records.append((at, encode_record(Record(SCHEMA_VERSION, stream, head + i, ts, event))))
                index.append((prefix + u64(head + i), at))
            cursor.putmulti(records, append=True)
            txn.cursor(db=self._index).putmulti(index)
            txn.put(skey, u64(head + len(events)), db=self._heads)
        return head + len(events)

    # -------------------------------------------------------------------- reading

    def head(self, stream: str) -> int:
        with self.env.begin() as txn:
            raw = txn.get(stream.encode("utf-8"), db=self._heads)
        return from_u64(raw) if raw else 0

    def _decode(self, offset: int, data: bytes) -> Recorded:
        r = decode_record(bytes(data), f"{self.path} offset {offset}")
        return Recorded(offset, r.stream, r.seq, r.ts, r.event)

    def read_stream(self, stream: str, from_seq: int = 0) -> Iterator[Recorded]:
        prefix = stream.encode("utf-8") + b"\x00"
        seq = max(from_seq, 0)
        size = _FIRST_CHUNK
        while True:
            chunk: list[tuple[int, bytes]] = []  # raw now, decoded as yielded: what precedes garbage still reads
            with self.env.begin() as txn:
                cursor = txn.cursor(db=self._index)
                if not cursor.set_range(prefix + u64(seq)):
                    return
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    data = txn.get(value, db=self._events)
                    if data is None:
                        raise LogError(f"{self.path}: {stream} seq {from_u64(key[-8:])} points at missing offset {from_u64(value)}")
                    chunk.append((from_u64(value), data))
                    if len(chunk) == size:
                        break
            last = None
            for offset, data in chunk:
                last = self._decode(offset, data)
                yield last
            if len(chunk) < size or last is None:
                return
            seq, size = last.seq + 1, min(size * 2, _MAX_CHUNK)

    def read_all(self, from_offset: int = 0) -> Iterator[Recorded]:
        offset = max(from_offset, 0)
        size = _FIRST_CHUNK
        while True:
            with self.env.begin() as txn:
                cursor = txn.cursor(db=self._events)
                if not cursor.set_range(u64(offset)):
                    return
                chunk = []
                for key, data in cursor:
                    chunk.append((from_u64(key), data))
                    if len(chunk) == size:
                        break
            for at, data in chunk:
                yield self._decode(at, data)
            if len(chunk) < size:
                return
            offset, size = chunk[-1][0] + 1, min(size * 2, _MAX_CHUNK)

    def end_offset(self) -> int:
        """The offset the next appended event will get."""
        with self.env.begin() as txn:
            cursor = txn.cursor(db=self._events)
            return from_u64(cursor.key()) + 1 if cursor.last() else 0

    def streams(self, family: str) -> list[str]:
        return [key.decode("utf-8") for key in keys_with_prefix(self.env, self._heads, family.encode("utf-8") + b"/")]

    def subscribe(self, families: tuple[str, ...], group: str | None = None) -> LmdbSubscription:
        """One embedded store has one reader per consumer: `group` only names it."""
        return LmdbSubscription(self, families)

    # ------------------------------------------------------------------ positions

    def load_position(self, consumer: str) -> bytes:
        """A consumer's saved position token (b"" when it has none): see Subscription."""
        with self.env.begin() as txn:
            raw = txn.get(consumer.encode("utf-8"), db=self._positions)
        return bytes(raw) if raw else b""

    def save_position(self, consumer: str, token: bytes, txn: lmdb.Transaction | None = None) -> None:
        """Persist a consumer's position; pass `txn` to commit it together with derived state."""
        if txn is not None:
            txn.put(consumer.encode("utf-8"), token, db=self._positions)
            return
        with self.env.begin(write=True) as own:
            own.put(consumer.encode("utf-8"), token, db=self._positions)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release_env(self.path)

    def __enter__(self) -> LmdbLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OffsetSubscription:
    """Shared by the single-process logs: the position is the next global offset."""

    def __init__(self, families: tuple[str, ...]) -> None:
        self.prefixes = tuple(f + "/" for f in families)
        self.next = 0

    def position(self) -> bytes:
        return u64(self.next)

    def seek(self, position: bytes) -> None:
        self.next = from_u64(position) if position else 0

    def commit(self) -> None:
        """Nothing to do: the consumer stores `position()` with its state."""

    def close(self) -> None:
        """Nothing to release: no transaction is held between polls."""


class LmdbSubscription(OffsetSubscription):
    """Follows the global order of the embedded log."""

    def __init__(self, log: LmdbLog, families: tuple[str, ...]) -> None:
        super().__init__(families)
        self.log = log

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout_s
        while True:
            out: list[Recorded] = []
            while len(out) < max_records:
                try:
                    for rec in self.log.read_all(self.next):
                        self.next = rec.offset + 1
                        if rec.stream.startswith(self.prefixes):
                            out.append(rec)
                        if len(out) >= max_records:
                            break
                    break
                except LogError as exc:  # a record that does not decode: keep it as a dead letter, go on
                    out.append(Recorded(self.next, "deadletter/lmdb", -1, 0.0, DeadLettered(
                        source=str(self.log.path), position=str(self.next), error=str(exc))))
                    self.next += 1
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def lag(self) -> int:
        return max(0, self.log.end_offset() - self.next)
