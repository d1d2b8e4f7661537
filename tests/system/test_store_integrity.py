"""Issue 10, storage half: a damaged, foreign, full or read-only store gets one clear line,
never a traceback or a signal, and nothing is written to it; check, backup and restore."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import msgspec
import pytest

from automem.engine.episodes.timetravel import materialize, memory_after_step
from automem.engine.log import LmdbLog, open_log
from automem.engine.log.lmdb import check as store_check
from automem.engine.log.lmdb.log import MARKER, u64
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.log.port import DamagedStore, NotAStore
from automem.engine.memory.snapshot import Snapshot
from automem.engine.policy.base import BadPolicySpec
from automem.engine.policy.file_policy import FilePolicy
from automem.schemas.codec import (
    CorruptRecord,
    _encoder,
    decode_batch,
    encode_record,
    seal,
)
from automem.schemas.errors import UserError
from automem.schemas.events import (
    SCHEMA_VERSION,
    MemoryOp,
    MemoryOpApplied,
    OutcomeObserved,
    Record,
)

from ..support.cli import assert_user_error, automem

BAD_UTF8 = b"\xff\xfe"


def events(n: int, detail: str = "AAAA") -> list[OutcomeObserved]:
    return [OutcomeObserved(step=i, kind="k", detail=detail) for i in range(n)]


def sha(path: Path) -> str:
    return hashlib.sha256((path / "data.mdb").read_bytes()).hexdigest()


def rewrite(path: Path, offset: int, change) -> None:
    """Replace the stored bytes of one event with change(bytes), in place."""
    env = lmdb.open(str(path), max_dbs=8)
    db = env.open_db(b"events")
    with env.begin(write=True) as txn:
        txn.put(u64(offset), change(bytes(txn.get(u64(offset), db=db))), db=db)
    env.close()


def invalid_utf8(raw: bytes) -> bytes:
    """The same record with invalid UTF-8 inside a string, resealed: the checksum passes."""
    return seal(raw[5:].replace(b"AAAA", b"A" + BAD_UTF8 + b"A"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    with LmdbLog(path) as log:
        log.append("ep/e1", 0, events(5))
    return path


# ------------------------------------------------------------------ 1. invalid UTF-8


def test_invalid_utf8_in_a_record_is_a_corrupt_record_named_by_stream_and_seq(data: Path) -> None:
    rewrite(data, 2, invalid_utf8)
    with LmdbLog(data, create=False) as log, pytest.raises(CorruptRecord, match=r"ep/e1 seq 2 offset 2: .*utf-8"):
        list(log.read_stream("ep/e1"))
    assert_user_error(automem("replay", "e1", "--data", str(data), cwd=data.parent), "corrupted record", "seq 2")


@pytest.mark.slow
def test_consume_dead_letters_an_invalid_utf8_record_and_goes_on(data: Path) -> None:
    rewrite(data, 2, invalid_utf8)
    proc = automem("consume", "materializer", "--until-idle", "--json", "--data", str(data), cwd=data.parent)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["dead_letters"] == 1 and stats["events"] == 4


def test_invalid_utf8_in_a_snapshot_falls_back_to_replaying_the_log(tmp_path: Path) -> None:
    ops = [MemoryOpApplied(step=i, phase="log", turn=0, op=MemoryOp("append", "n.txt", (f"AAAA {i}",)), ok=True,
                           result_digest="") for i in range(6)]
    with LmdbLog(tmp_path / "d") as log:
        log.append("ep/e", 0, ops)
        materialize(log, SnapshotStore(log), "e", every=2)
        expected = memory_after_step(log, SnapshotStore(log), "e", 4).contents()
        key = b"e\x00" + u64(4)
        with log.txn(write=True) as txn:
            raw = bytes(txn.get(key, db=log.dbs["snapshots"]))
            txn.put(key, seal(raw[5:].replace(b"AAAA 3", b"A" + BAD_UTF8 + b"A 3")), db=log.dbs["snapshots"])
        assert memory_after_step(log, SnapshotStore(log), "e", 4).contents() == expected


def test_invalid_utf8_in_a_file_policy_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "a' + BAD_UTF8 + b'"}\n')
    with pytest.raises(BadPolicySpec, match="line 2: not UTF-8"):
        FilePolicy(path)


def test_invalid_utf8_in_a_kafka_batch_is_a_corrupt_record() -> None:
    from automem.schemas.events import Batch

    raw = _encoder.encode(Batch(SCHEMA_VERSION, "ep/e", 0, 0.0, events(1)))
    with pytest.raises(CorruptRecord, match="utf-8"):
        decode_batch(raw.replace(b"AAAA", b"A" + BAD_UTF8 + b"A"), "automem.ep:0 offset 7")
    with pytest.raises(CorruptRecord):
        decode_batch(b"", "automem.ep:0 offset 8")  # a tombstone


# ------------------------------------------------------------------ 2. checksums


def test_a_flipped_byte_is_named_by_stream_and_seq_not_decoded(data: Path) -> None:
    def flip(raw: bytes) -> bytes:  # "AAAA" -> "AAAB": still valid msgpack, a different value
        return raw.replace(b"AAAA", b"AAAB")

    rewrite(data, 3, flip)
    with LmdbLog(data, create=False) as log:
        with pytest.raises(CorruptRecord, match=r"ep/e1 seq 3 offset 3: checksum mismatch"):
            list(log.read_stream("ep/e1"))
        assert [r.seq for r in log.read_stream("ep/e1", 4)] == [4]


def test_records_written_before_checksums_still_read(data: Path) -> None:
    legacy = _encoder.encode(Record(SCHEMA_VERSION, "ep/e1", 1, 0.0, events(2)[1]))
    assert legacy[0] == 0x95
    rewrite(data, 1, lambda _raw: legacy)
    with LmdbLog(data, create=False) as log:
        assert [r.event for r in log.read_stream("ep/e1")] == events(5)


# ------------------------------------------------------------- 3. marker, read-only


def test_a_new_store_is_marked(data: Path) -> None:
    with LmdbLog(data, create=False) as log:
        assert log.get(MARKER, log.dbs["meta"]) == b"1"


def foreign(path: Path) -> Path:
    env = lmdb.open(str(path), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
        txn.put(b"k", b"v", db=env.open_db(b"other", txn=txn))
    env.close()
    return path


@pytest.mark.slow
@pytest.mark.parametrize("create", [False, True])
def test_a_foreign_lmdb_is_refused_without_writing_to_it(tmp_path: Path, create: bool) -> None:
    path = foreign(tmp_path / "foreign")
    before = sha(path)
    with pytest.raises(NotAStore, match="not a valid automem data directory"):
        LmdbLog(path, create=create)
    assert sha(path) == before
    assert_user_error(automem("episodes", "--data", str(path), cwd=tmp_path), "not a valid automem data directory")
    assert_user_error(automem("run", "--policy", "random", "--max-steps", "2", "--data", str(path), cwd=tmp_path),
                      "not a valid automem data directory")
    assert sha(path) == before


def test_a_store_without_the_marker_opens_and_is_marked_only_by_a_writer(data: Path) -> None:
    with LmdbLog(data) as log, log.txn(write=True) as txn:
        txn.delete(MARKER, db=log.dbs["meta"])
    before = sha(data)
    with LmdbLog(data, create=False) as log:
        assert log.head("ep/e1") == 5 and log.get(MARKER, log.dbs["meta"]) is None
    assert sha(data) == before
    with LmdbLog(data) as log:
        assert log.get(MARKER, log.dbs["meta"]) == b"1"


def test_read_only_opening_writes_nothing_and_refuses_writes(data: Path) -> None:
    before = sha(data)
    with LmdbLog(data, create=False) as log:
        assert log.head("ep/e1") == 5
        with pytest.raises(UserError, match="read-only"):
            log.append("ep/e1", 5, events(1))
    assert sha(data) == before


@pytest.fixture
def read_only_copy(tmp_path: Path):
    """A recorded episode (e1 as its id) on a read-only bind mount (root may write anywhere else)."""
    store, mount = tmp_path / "store", tmp_path / "ro"
    proc = automem("run", "--env", "crafter", "--policy", "random", "--max-steps", "5", "--json", "--data", str(store),
                   cwd=tmp_path)
    (tmp_path / "episode").write_text(json.loads(proc.stdout)["episodes"][0]["id"])
    mount.mkdir()
    if subprocess.run(["mount", "--bind", str(store), str(mount)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root and mount permission)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_store_on_a_read_only_mount_can_be_read(read_only_copy: Path, tmp_path: Path) -> None:
    episode = (tmp_path / "episode").read_text()
    for command in (["episodes"], ["replay", episode], ["memory", episode, "--at", "1"], ["audit", episode]):
        proc = automem(*command, "--json", "--data", str(read_only_copy), cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
    proc = automem("store", "check", "--json", "--data", str(read_only_copy), cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["clean"], proc.stderr


# ---------------------------------------------------------------- 4. truncated file


def test_a_truncated_store_is_refused_before_lmdb_maps_it(data: Path) -> None:
    size = (data / "data.mdb").stat().st_size
    with open(data / "data.mdb", "r+b") as f:
        f.truncate(size - 4096)
    with pytest.raises(DamagedStore, match="truncated"):
        LmdbLog(data, create=False)
    proc = automem("episodes", "--data", str(data), cwd=data.parent)
    assert_user_error(proc, "truncated", "automem store check", "automem store restore")


# ----------------------------------------------------------------- 5. full disk, map


def test_a_full_map_is_one_line_and_keeps_what_was_written(tmp_path: Path) -> None:
    with LmdbLog(tmp_path / "d", fsync=False, map_size=256 << 10) as log:
        log.append("ep/e", 0, events(5))
        with pytest.raises(UserError, match="is full .*data written before is intact"):
            log.append("ep/e", 5, events(400, "x" * 2000))
        assert [r.event for r in log.read_stream("ep/e")] == events(5)


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()}): needs root in a privileged container")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_data_written_before_stays_intact(tiny_disk: Path) -> None:
    store = tiny_disk / "d"
    run = ["run", "--env", "crafter", "--policy", "random", "--episodes", "3", "--max-steps", "500", "--data", str(store)]
    proc = automem(*run, cwd=tiny_disk)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the disk holding the store" in proc.stderr.strip().splitlines()[-1]
    again = automem(*run, cwd=tiny_disk)
    assert again.returncode == 2 and "disk holding the store" in again.stderr.strip().splitlines()[-1], again.stderr
    listed = automem("episodes", "--json", "--data", str(store), cwd=tiny_disk)
    assert listed.returncode == 0 and json.loads(listed.stdout)["episodes"], listed.stderr
    checked = automem("store", "check", "--json", "--data", str(store), cwd=tiny_disk)
    assert checked.returncode == 0 and json.loads(checked.stdout)["clean"], checked.stdout


# --------------------------------------------------------------- 6. reader table


HOLD_READER = r"""
import lmdb, sys, time
env = lmdb.open(sys.argv[1], max_dbs=8, max_readers=4)
txn = env.begin()
print("reading", flush=True)
time.sleep(600)
"""


def test_a_reader_table_full_of_dead_processes_is_cleared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import automem.engine.log.lmdb.log as lmdb_log

    monkeypatch.setattr(lmdb_log, "MAX_READERS", 4)  # the first opener sizes the table
    with LmdbLog(tmp_path / "d") as log:
        log.append("ep/e", 0, events(1))
        holders = [subprocess.Popen([sys.executable, "-c", HOLD_READER, str(tmp_path / "d")], stdout=subprocess.PIPE,
                                    text=True) for _ in range(4)]
        for p in holders:
            assert p.stdout is not None and p.stdout.readline() == "reading\n"
        for p in holders:
            p.send_signal(signal.SIGKILL)
            p.wait()
        assert log.head("ep/e") == 1  # stale slots of the killed readers cleared, then retried


# ------------------------------------------------------------- 7. symlinks, 8. bus


def test_a_dangling_data_symlink_is_refused_and_nothing_is_created_outside(tmp_path: Path) -> None:
    store = tmp_path / "d"
    store.mkdir()
    outside = tmp_path / "elsewhere" / "data.mdb"
    (store / "data.mdb").symlink_to(outside)
    assert_user_error(automem("run", "--policy", "random", "--max-steps", "2", "--data", str(store), cwd=tmp_path),
                      "symlink", "outside the store")
    assert not outside.exists() and not outside.parent.exists()


@pytest.mark.slow
@pytest.mark.parametrize("bus", ["kafka://127.0.0.1:notaport", "kafka://[::1", "kafka://h:0", "kafka://h:99999"])
def test_a_malformed_kafka_url_is_one_line(bus: str, tmp_path: Path) -> None:
    assert_user_error(automem("episodes", "--bus", bus, cwd=tmp_path), "HOST:PORT", "1..65535")
    with pytest.raises(UserError):
        open_log(bus)


# ------------------------------------------------------- 9. check, backup, restore


@pytest.mark.slow
def test_check_is_clean_on_a_sound_store_and_names_a_damaged_record(data: Path) -> None:
    proc = automem("store", "check", "--json", "--data", str(data), cwd=data.parent)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["clean"] and report["events"] == 5 and report["store_version"] == 1
    rewrite(data, 3, lambda raw: raw.replace(b"AAAA", b"AAAB"))
    proc = automem("store", "check", "--json", "--data", str(data), cwd=data.parent)
    assert_user_error(proc, "store check found 1 problem")
    [problem] = json.loads(proc.stdout)["problems"]
    assert (problem["kind"], problem["stream"], problem["seq"], problem["offset"]) == ("record", "ep/e1", 3, 3)


def test_check_finds_a_gap_and_a_wrong_head(data: Path) -> None:
    with LmdbLog(data) as log, log.txn(write=True) as txn:
        txn.delete(b"ep/e1\x00" + u64(2), db=log.dbs["index"])
    report = store_check.check_store(data)
    kinds = {(p.kind, p.seq) for p in report.problems}
    assert ("index", 2) in kinds and any(p.kind == "head" for p in report.problems)
    assert any(p.kind == "orphan" and p.offset == 2 for p in report.problems)


def test_check_reports_a_walk_killed_by_a_signal(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dies = "import os, signal; print('{\"streams\": 1, \"reached\": \"ep/e1 seq 3\"}', flush=True); os.kill(os.getpid(), signal.SIGBUS)"
    monkeypatch.setattr(store_check, "child_command", lambda _path: [sys.executable, "-c", dies])
    [problem] = store_check.check_store(data).problems
    assert problem.kind == "structure" and "died with SIGBUS at ep/e1 seq 3" in problem.detail


WRITER = r"""
import sys
from automem.engine.log import LmdbLog
from automem.schemas.events import OutcomeObserved
log = LmdbLog(sys.argv[1], fsync=False)
seq = log.head("ep/w")
print("up", flush=True)
while True:
    seq = log.append("ep/w", seq, [OutcomeObserved(step=seq, kind="k", detail="x" * 500)] * 8)
"""


@pytest.mark.slow
def test_backup_while_a_writer_runs_then_restore(data: Path, tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(data)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "up\n"
        time.sleep(0.3)
        backup = tmp_path / "backup"
        proc = automem("store", "backup", str(backup), "--json", "--data", str(data), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert_user_error(automem("store", "restore", str(backup), "--data", str(data), cwd=tmp_path), "open in another process")
    finally:
        writer.kill()
        writer.wait()
    report = store_check.check_store(backup)
    assert report.clean and report.events > 5, report.problems
    with LmdbLog(backup, create=False) as log:
        copied = log.head("ep/w")
    proc = automem("store", "restore", str(backup), "--json", "--data", str(data), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kept"] == str(data.resolve() / "data.mdb.before-restore")
    with LmdbLog(data, create=False) as log:
        assert log.head("ep/w") == copied and log.head("ep/e1") == 5


@pytest.mark.slow
def test_restore_refuses_what_is_not_an_automem_store(data: Path, tmp_path: Path) -> None:
    before = sha(data)
    path = foreign(tmp_path / "foreign")
    assert_user_error(automem("store", "restore", str(path), "--data", str(data), cwd=tmp_path), "not a valid automem data directory")
    assert_user_error(automem("store", "backup", str(data / "inside"), "--data", str(data), cwd=tmp_path), "inside the store")
    assert_user_error(automem("store", "check", "--bus", "kafka://h:1", cwd=tmp_path), "embedded LMDB store")
    assert sha(data) == before and not (data / "data.mdb.before-restore").exists()


def test_snapshots_round_trip_sealed() -> None:
    from automem.engine.memory.snapshot import START, decode_snapshot, encode_snapshot

    assert decode_snapshot(encode_snapshot(START), "here") == START
    assert decode_snapshot(msgspec.msgpack.encode(Snapshot(1, 2, 3, START.state)), "legacy").seq == 2
    sealed = encode_record(Record(SCHEMA_VERSION, "ep/e", 0, 0.0, events(1)[0]))
    assert sealed[0] == 0xC1
