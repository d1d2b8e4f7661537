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
import struct
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import lmdb

from automem.engine.log.group import GroupCommit
from automem.engine.log.lmdb.pages import Damaged, NotLmdb, check_header, vet
from automem.engine.log.port import CannotMap, ConflictError, DamagedStore, MissingData, NotAStore
from automem.schemas.codec import CorruptRecord, LogError, decode_record, encode_record
from automem.schemas.events import (
    SCHEMA_VERSION,
    AnyEvent,
    DeadLettered,
    Record,
    Recorded,
)
from automem.schemas.streams import check_stream

if TYPE_CHECKING:
    from automem.engine.log.lmdb.snapshots import SnapshotStore

DEFAULT_MAP_SIZE = 1 << 36  # 64 GiB of address space; the file grows only as data arrives
DB_NAMES = (b"events", b"index", b"heads", b"positions", b"snapshots", b"meta")
MARKER = b"automem"  # in `meta`: the store format version, written at creation
STORE_VERSION = 1  # 1: records sealed with a checksum (0: unmarked stores, plain msgpack records)
MAX_READERS = 1024  # LMDB's reader table (default 126): every process or thread reading at once takes a slot
WALK_LIMIT = 64 << 20  # stores up to this size have every page vetted at open (~0.1 s); all have their meta vetted
_FIRST_CHUNK, _MAX_CHUNK = 16, 1024  # short reads stay cheap, long scans amortise


_u64 = struct.Struct(">Q")


def u64(n: int) -> bytes:
    return _u64.pack(n)


def from_u64(b: bytes) -> int:
    return int.from_bytes(b, "big")


def store_error(path: Path, exc: lmdb.Error) -> LogError:
    """One line for whatever LMDB raised: what happened to the store and what to do."""
    if isinstance(exc, lmdb.MapFullError):
        return LogError(f"the store at {path} is full (its LMDB map size is used up): data written before is intact; "
                        "continue in a new --data folder")
    if isinstance(exc, lmdb.DiskError) or "Input/output error" in str(exc) or "No space" in str(exc):
        return LogError(f"the disk holding the store at {path} is full or failing ({exc}): free space on it and "
                        "re-run; data written before is intact")
    if isinstance(exc, lmdb.ReadonlyError):
        return LogError(f"the store at {path} is open read-only here (a read-only command or folder): "
                        "it cannot be written; run a writing command on a writable store")
    if isinstance(exc, lmdb.MemoryError) or "Cannot allocate memory" in str(exc):
        return CannotMap(path, str(exc))
    if isinstance(exc, lmdb.ReadersFullError):
        return LogError(f"more than {MAX_READERS} processes or threads are reading the store at {path} at once: "
                        "stop some consumers or commands and retry")
    return DamagedStore(path, f"LMDB: {exc}")


def _check_files(path: Path) -> None:
    """Refuse store files that are symlinks leading out of the folder (LMDB would follow them)."""
    for name in ("data.mdb", "lock.mdb"):
        f = path / name
        if f.is_symlink():
            target = f.resolve()
            if not target.exists() or path not in target.parents:
                raise MissingData(f"{f} is a symlink to {target}{'' if target.exists() else ' (missing)'}, outside the "
                                  "store: replace it with the file itself or point --data at the real folder")


def _check_header(path: Path) -> None:
    """Before LMDB opens data.mdb: two meta pages (a file being created gets a moment for them)."""
    data = path / "data.mdb"
    try:
        for _ in range(25):
            if data.stat().st_size >= 2 * 4096:
                break
            time.sleep(0.02)  # LMDB writes both meta pages right after it creates the file
        check_header(data)
    except NotLmdb as exc:
        raise NotAStore(path, f"{exc}: not an LMDB file") from None
    except Damaged as exc:
        raise DamagedStore(path, str(exc)) from None
    except OSError as exc:
        raise MissingData(f"cannot read {data}: {exc.strerror}") from None


def _vet(env: lmdb.Environment, path: Path) -> None:
    try:
        vet(env, path / "data.mdb", DB_NAMES, WALK_LIMIT)
    except Damaged as exc:
        raise DamagedStore(path, str(exc)) from None
    except lmdb.Error as exc:
        raise store_error(path, exc) from None


class _Shared:
    """LMDB forbids opening one environment twice in a process: share it, per pid. A
    process's first open sets the mode: a later writer on a read-only env gets read-only."""

    lock = threading.Lock()
    envs: dict[tuple[str, int], tuple[lmdb.Environment, int]] = {}
    fsync: dict[tuple[str, int], bool | None] = {}  # None: opened read-only


def _open_env(path: Path, fsync: bool, map_size: int, readonly: bool) -> tuple[lmdb.Environment, bool]:
    """The process's environment of `path` and whether it is read-only."""
    key = (str(path), os.getpid())
    with _Shared.lock:
        found = _Shared.envs.get(key)
        if found:
            shared = _Shared.fsync[key]
            if not readonly and shared is not None and shared != fsync:
                raise LogError(f"{path} is already open in this process with fsync={shared}; "
                               "open it with the same durability everywhere")
            _Shared.envs[key] = (found[0], found[1] + 1)
            return found[0], shared is None
        _check_files(path)
        existing = (path / "data.mdb").exists()
        if existing:
            _check_header(path)
        try:
            env = lmdb.open(
                str(path), map_size=map_size, max_dbs=len(DB_NAMES), sync=fsync, metasync=fsync,
                max_readers=MAX_READERS, readahead=False, readonly=readonly,
                lock=not readonly or os.access(path, os.W_OK),  # a read-only mount: no lock file to write
            )
        except lmdb.InvalidError as exc:
            raise NotAStore(path, f"{exc}") from None
        except lmdb.Error as exc:
            raise store_error(path, exc) from None
        if existing:
            try:
                _vet(env, path)
            except BaseException:
                env.close()
                raise
        _Shared.envs[key] = (env, 1)
        _Shared.fsync[key] = None if readonly else fsync
        return env, readonly


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
    """The EventLog port on LMDB. `fsync=False` trades power-loss safety for speed.

    `create=False` (read-only commands), or a folder this process may not write, opens
    LMDB read-only: nothing is written to the file (writes fail with one line), and a store
    on a read-only mount can be read. Either way the store is vetted
    first (meta, pages) and must carry automem's marker, or be an unmarked store with
    automem's databases (marked when first opened for writing)."""

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
        writable = create and os.access(self.path, os.W_OK)  # a folder we may not write: read what is there
        if not os.access(self.path, os.R_OK | os.X_OK) or (create and not writable and not (self.path / "data.mdb").exists()):
            raise MissingData(f"data directory {self.path} is not {'readable and writable' if create else 'readable'} "
                              "by this user; fix its permissions")
        self.url = f"lmdb://{self.path}"
        self.env, self.readonly = _open_env(self.path, fsync, map_size, readonly=not writable)
        try:
            self.dbs = self._open_dbs()
        except BaseException:
            _release_env(self.path)
            raise
        self._events = self.dbs["events"]
        self._index = self.dbs["index"]
        self._heads = self.dbs["heads"]
        self._positions = self.dbs["positions"]
        self._closed = False

    def _open_dbs(self) -> dict[str, lmdb._Database]:
        """Recognise the store by its databases and marker; create them in a new store."""
        try:
            with self.txn() as txn:
                names = []
                for key in txn.cursor().iternext(values=False):  # the main database names the others
                    if bytes(key) not in DB_NAMES:
                        raise NotAStore(self.path, f"it holds {bytes(key)[:40]!r}, which automem never writes")
                    names.append(bytes(key))
            if not names and self.readonly:
                raise MissingData(f"no automem data at {self.path} (an empty LMDB store): run `automem run` first "
                                  "or point --data/$AUTOMEM_DATA at your store")
            if names and len(names) < len(DB_NAMES):
                raise NotAStore(self.path, f"it has the databases {b', '.join(names).decode()} but not all of automem's")
            dbs = {name.decode(): self.env.open_db(name, create=False) for name in names}
            marker = self.get(MARKER, dbs["meta"]) if dbs else None
        except lmdb.IncompatibleError:
            raise NotAStore(self.path, "a database automem uses is a plain key there") from None
        except lmdb.Error as exc:
            raise store_error(self.path, exc) from None
        if marker is not None:
            if not marker.isdigit():
                raise NotAStore(self.path, f"its marker reads {marker[:40]!r}")
            if int(marker) > STORE_VERSION:
                raise LogError(f"the store at {self.path} has store version {int(marker)}, this automem reads up to "
                               f"{STORE_VERSION}: upgrade automem to use it")
            return dbs
        if self.readonly:
            return dbs  # an unmarked store of an earlier automem: marked when next opened for writing
        with self.txn(write=True) as txn:
            dbs = {name.decode(): self.env.open_db(name, txn=txn) for name in DB_NAMES}
            txn.put(MARKER, str(STORE_VERSION).encode(), db=dbs["meta"])
        return dbs

    @contextmanager
    def txn(self, write: bool = False) -> Iterator[lmdb.Transaction[bytes]]:
        """An LMDB transaction whose failures become one-line LogErrors; a full reader table
        is cleared of dead processes' slots (reader_check) and tried once more."""
        try:
            try:
                txn = self.env.begin(write=write)
            except lmdb.ReadersFullError:
                self.env.reader_check()
                txn = self.env.begin(write=write)
            with txn:
                yield txn
        except lmdb.Error as exc:
            raise store_error(self.path, exc) from None

    def get(self, key: bytes, db: lmdb._Database) -> bytes | None:
        with self.txn() as txn:
            raw = txn.get(key, db=db)
        return None if raw is None else bytes(raw)

    def meta(self, key: bytes) -> bytes | None:
        """A key of the `meta` database: consumers' own state (the materializer's cursors)."""
        return self.get(key, self.dbs["meta"])

    def keys_with_prefix(self, db: lmdb._Database, prefix: bytes) -> list[bytes]:
        """All keys of `db` that start with `prefix`, in key order."""
        out = []
        with self.txn() as txn:
            cursor = txn.cursor(db=db)
            if cursor.set_range(prefix):
                for key in cursor.iternext(values=False):
                    if not key.startswith(prefix):
                        break
                    out.append(bytes(key))
        return out

    # -------------------------------------------------------------------- writing

    def append(self, stream: str, expected_seq: int, events: Sequence[AnyEvent]) -> int:
        return self.append_many(((stream, expected_seq, events),))[0]

    def append_many(self, batches: Sequence[tuple[str, int, Sequence[AnyEvent]]]) -> list[int]:
        """Append several batches in one write transaction (one commit, one fsync): each is
        checked and laid out exactly as `append` does it, in order, so a later batch of the
        same stream follows an earlier one. All or nothing: a conflict on any batch raises
        ConflictError (naming that batch's stream and expected seq) and writes none of them.
        Returns each batch's next seq."""
        skeys = [check_stream(stream).encode("utf-8") for stream, _, _ in batches]
        ts = time.time()  # informational only
        out: list[int] = []
        records: list[tuple[bytes, bytes]] = []
        index: list[tuple[bytes, bytes]] = []
        heads: dict[bytes, int] = {}  # streams written in this transaction -> their new head
        pack, seal = _u64.pack, encode_record
        try:  # not self.txn(): a write transaction takes no reader slot, and this path is hot
            with self.env.begin(write=True) as txn:
                cursor = txn.cursor(db=self._events)
                offset = from_u64(cursor.key()) + 1 if cursor.last() else 0
                for skey, (stream, expected_seq, events) in zip(skeys, batches):
                    head = heads.get(skey)
                    if head is None:
                        raw = txn.get(skey, db=self._heads)
                        head = from_u64(raw) if raw else 0
                    if head != expected_seq:
                        raise ConflictError(stream, expected_seq, head)
                    out.append(head + len(events))
                    if not events:
                        continue
                    prefix = skey + b"\x00"
                    for i, event in enumerate(events):
                        at = pack(offset + i)
                        records.append((at, seal(Record(SCHEMA_VERSION, stream, head + i, ts, event))))
                        index.append((prefix + pack(head + i), at))
                    offset += len(events)
                    heads[skey] = head + len(events)
                if records:
                    cursor.putmulti(records, append=True)
                    txn.cursor(db=self._index).putmulti(index)
                    for skey, head in heads.items():
                        txn.put(skey, pack(head), db=self._heads)
        except lmdb.Error as exc:
            raise store_error(self.path, exc) from None
        return out

    # -------------------------------------------------------------------- reading

    def head(self, stream: str) -> int:
        raw = self.get(stream.encode("utf-8"), self._heads)
        return from_u64(raw) if raw else 0

    def _decode(self, offset: int, data: bytes, stream: str | None = None, seq: int | None = None) -> Recorded:
        """A stored record; read through the index, it must be the (stream, seq) the index says."""
        where = f"{self.path} offset {offset}" if stream is None else f"{self.path} {stream} seq {seq} offset {offset}"
        r = decode_record(data, where)
        if stream is not None and (r.stream, r.seq) != (stream, seq):
            raise CorruptRecord(where, f"it holds {r.stream} seq {r.seq}: the index and the events disagree")
        return Recorded(offset, r.stream, r.seq, r.ts, r.event)

    def read_stream(self, stream: str, from_seq: int = 0) -> Iterator[Recorded]:
        prefix = stream.encode("utf-8") + b"\x00"
        seq = max(from_seq, 0)
        size = _FIRST_CHUNK
        while True:
            chunk: list[tuple[int, int, bytes]] = []  # raw now, decoded as yielded: what precedes garbage still reads
            with self.txn() as txn:
                cursor = txn.cursor(db=self._index)
                if not cursor.set_range(prefix + u64(seq)):
                    return
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    data = txn.get(value, db=self._events)
                    if data is None:
                        raise CorruptRecord(f"{self.path} {stream} seq {from_u64(key[-8:])}",
                                            f"the index points at offset {from_u64(value)}, which holds no event")
                    chunk.append((from_u64(key[-8:]), from_u64(value), data))
                    if len(chunk) == size:
                        break
            last = None
            for at_seq, offset, data in chunk:
                last = self._decode(offset, data, stream, at_seq)
                yield last
            if len(chunk) < size or last is None:
                return
            seq, size = last.seq + 1, min(size * 2, _MAX_CHUNK)

    def read_all(self, from_offset: int = 0) -> Iterator[Recorded]:
        offset = max(from_offset, 0)
        size = _FIRST_CHUNK
        while True:
            with self.txn() as txn:
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
        with self.txn() as txn:
            cursor = txn.cursor(db=self._events)
            return from_u64(cursor.key()) + 1 if cursor.last() else 0

    def streams(self, family: str) -> list[str]:
        return [key.decode("utf-8") for key in self.keys_with_prefix(self._heads, family.encode("utf-8") + b"/")]

    def subscribe(self, families: tuple[str, ...], group: str | None = None) -> LmdbSubscription:
        """One embedded store has one reader per consumer: `group` only names it."""
        return LmdbSubscription(self, families)

    # ------------------------------------------------------------------ capabilities

    def flush(self) -> None:
        """Nothing to do: every append is one committed transaction on return."""

    def grouped(self) -> GroupCommit:
        """Group commit: an episode's steps share transactions (engine/log/group)."""
        return GroupCommit(self)

    def lease_folder(self) -> Path:
        return self.path

    def snapshots(self) -> SnapshotStore:
        from automem.engine.log.lmdb.snapshots import SnapshotStore  # that module builds on this one

        return SnapshotStore(self)

    # ------------------------------------------------------------------ positions

    def load_position(self, consumer: str) -> bytes:
        """A consumer's saved position token (b"" when it has none): see Subscription."""
        return self.get(consumer.encode("utf-8"), self._positions) or b""

    def save_position(self, consumer: str, token: bytes, txn: lmdb.Transaction | None = None) -> None:
        """Persist a consumer's position; pass `txn` to commit it together with derived state."""
        if txn is not None:
            txn.put(consumer.encode("utf-8"), token, db=self._positions)
            return
        with self.txn(write=True) as own:
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
                except CorruptRecord as exc:  # a record that does not decode: keep it as a dead letter, go on
                    out.append(Recorded(self.next, "deadletter/lmdb", -1, 0.0, DeadLettered(
                        source=str(self.log.path), position=str(self.next), error=str(exc))))
                    self.next += 1
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def lag(self) -> int:
        return max(0, self.log.end_offset() - self.next)
