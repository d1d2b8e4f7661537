"""`automem store check`: every page, record, index entry and head of a store, verified.

The pages are walked in this process with plain file reads (engine/log/lmdb/pages.py). The
records are read through LMDB in a child process (`python -m automem.engine.log.lmdb.check
PATH`), so a fault LMDB cannot survive (SIGBUS, SIGSEGV, an assertion's SIGABRT) is
reported as structural damage, with the last position the walk reached, instead of
killing the command. The child prints one JSON document per line: problems as found,
then its totals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import lmdb
import msgspec

from automem.engine.log.lmdb.log import DB_NAMES, MARKER, MAX_READERS, LmdbLog, from_u64, store_error
from automem.engine.log.lmdb.pages import Damaged, check_header, held_problems
from automem.engine.log.port import CannotMap, LogError, MissingData
from automem.engine.memory.snapshot import decode_snapshot
from automem.schemas.codec import CorruptRecord, NewerSchema, decode_record
from automem.schemas.errors import UserError


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    kind: str  # pages | structure | record | index | head | orphan | snapshot | store | memory (could not map)
    detail: str
    stream: str | None = None
    seq: int | None = None
    offset: int | None = None


class Totals(msgspec.Struct, kw_only=True):
    streams: int = 0
    events: int = 0
    snapshots: int = 0
    store_version: int = 0  # 0: an unmarked store of an earlier automem
    reached: str = "start"  # the last position the walk got to


class Report(msgspec.Struct, kw_only=True):
    store: str
    clean: bool
    streams: int
    events: int
    snapshots: int
    store_version: int
    problems: list[Problem]


_line = msgspec.json.Encoder()
_problem = msgspec.json.Decoder(Problem)
_totals = msgspec.json.Decoder(Totals)


def walk_records(log: LmdbLog, totals: Totals) -> Iterator[Problem | Totals]:
    """Every stream's index against its head and the events, in one read transaction;
    `totals` comes out as progress before each stream."""
    dbs = log.dbs
    with log.txn() as txn:
        marker = txn.get(MARKER, db=dbs["meta"])
        totals.store_version = int(marker) if marker and bytes(marker).isdigit() else 0
        referenced: set[int] = set()
        index = txn.cursor(db=dbs["index"])
        for raw_key, raw_head in txn.cursor(db=dbs["heads"]):
            stream, head = bytes(raw_key).decode("utf-8", "replace"), from_u64(raw_head)
            totals.streams += 1
            totals.reached = f"{stream} seq 0"
            yield totals
            yield from _walk_stream(txn, dbs["events"], index, stream, bytes(raw_key), head, referenced, totals)
        for raw_offset, _ in txn.cursor(db=dbs["events"]):
            if from_u64(raw_offset) not in referenced:
                yield Problem(kind="orphan", offset=from_u64(raw_offset), detail="an event no stream's index points at")
        for key, value in txn.cursor(db=dbs["snapshots"]):
            totals.snapshots += 1
            episode, _, position = bytes(key).rpartition(b"\x00")
            where = f"snapshot of {episode.decode('utf-8', 'replace')} at op {from_u64(position)}"
            try:
                decode_snapshot(bytes(value), where)
            except CorruptRecord as exc:
                yield Problem(kind="snapshot", detail=f"{exc}; snapshots are derived: `automem consume materializer` rebuilds them")


def _walk_stream(txn: lmdb.Transaction[bytes], events: lmdb._Database, index: lmdb.Cursor[bytes], stream: str,
                 skey: bytes, head: int, referenced: set[int], totals: Totals) -> Iterator[Problem]:
    prefix = skey + b"\x00"
    expected = count = 0
    if index.set_range(prefix):
        for key, value in index:
            if not key.startswith(prefix):
                break
            seq, offset = from_u64(key[len(prefix):]), from_u64(value)
            totals.reached = f"{stream} seq {seq} offset {offset}"
            if seq != expected:
                yield Problem(kind="index", stream=stream, seq=expected,
                              detail=f"seqs {expected}..{seq - 1} are missing from the index" if seq > expected
                              else f"seq {seq} is indexed out of order")
            expected, count = seq + 1, count + 1
            referenced.add(offset)
            data = txn.get(value, db=events)
            if data is None:
                yield Problem(kind="index", stream=stream, seq=seq, offset=offset, detail="the index points at an offset with no event")
                continue
            totals.events += 1
            try:
                record = decode_record(bytes(data), f"{stream} seq {seq} offset {offset}")
            except (CorruptRecord, NewerSchema) as exc:
                yield Problem(kind="record", stream=stream, seq=seq, offset=offset, detail=str(exc))
                continue
            if (record.stream, record.seq) != (stream, seq):
                yield Problem(kind="record", stream=stream, seq=seq, offset=offset,
                              detail=f"the event there is {record.stream} seq {record.seq}")
    if expected != head or count != head:
        yield Problem(kind="head", stream=stream, detail=f"the head says {head} events, the index holds {count} "
                      f"(seqs up to {expected - 1})")


def _child(path: str) -> int:
    """The record walk, as the child process runs it."""
    totals = Totals()
    try:
        with LmdbLog(path, create=False) as log:
            for item in walk_records(log, totals):
                sys.stdout.write(_line.encode(item).decode() + "\n")
                sys.stdout.flush()
    except UserError as exc:
        kind = "memory" if isinstance(exc, CannotMap) else "store"
        sys.stdout.write(_line.encode(Problem(kind=kind, detail=str(exc))).decode() + "\n")
    sys.stdout.write(_line.encode(totals).decode() + "\n")
    return 0


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def child_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "automem.engine.log.lmdb.check", str(path)]


def _page_problems(path: Path) -> list[str]:
    """Every page of the store's current snapshot, walked while a read transaction holds it."""
    try:
        check_header(path / "data.mdb")
    except Damaged as exc:
        return [str(exc)]
    try:
        env = lmdb.open(str(path), readonly=True, lock=os.access(path, os.W_OK), max_dbs=len(DB_NAMES),
                        max_readers=MAX_READERS)
    except lmdb.Error as exc:
        if isinstance(error := store_error(path, exc), CannotMap):  # this process's limit, not the store's damage
            raise error from None
        return [f"LMDB cannot open it: {exc}"]
    with env:
        return held_problems(env, path / "data.mdb")


def check_store(path: Path) -> Report:
    """Pages first; records only when the pages are sound (LMDB would read the damaged ones)."""
    path = path.resolve()
    data = path / "data.mdb"
    if not data.is_file():
        raise MissingData(f"no automem data at {path}: point --data at a store folder")
    found = [Problem(kind="pages", detail=p) for p in _page_problems(path)]
    totals = Totals()
    if not found:
        proc = subprocess.run(child_command(path), capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            if line.startswith('{"kind"'):
                found.append(_problem.decode(line))
            else:
                totals = _totals.decode(line)
        if proc.returncode < 0:
            found.append(Problem(kind="structure", detail=f"LMDB structure damaged: the walk died with "
                                 f"{_signal_name(proc.returncode)} at {totals.reached}"))
        elif proc.returncode:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            found.append(Problem(kind="structure", detail=f"the walk failed at {totals.reached}: {last}"))
    unmapped = [p for p in found if p.kind == "memory"]
    if unmapped:  # the walk's process could not map it: say so, never call the store damaged
        raise LogError(unmapped[0].detail)
    return Report(store=str(path), clean=not found, streams=totals.streams, events=totals.events,
                  snapshots=totals.snapshots, store_version=totals.store_version, problems=found)


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
