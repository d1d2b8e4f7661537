"""Damaged copies of a real store: every read command ends with exit 0, 2 or 3, at most one
line on stderr, never 1 or a signal, and writes nothing to the damaged file.

One store is recorded per module (two short random-policy Crafter episodes, snapshots
by the materializer); each case damages a copy of it. Run with -s for the outcome
histogram per class (the README's figures)."""

from __future__ import annotations

import collections
import hashlib
import json
import random
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import lmdb
import pytest

from automem.engine.log.lmdb.log import u64
from automem.schemas.codec import seal

from ..support.cli import automem

PAGE = 4096


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("recorded")
    data = root / "data"
    proc = automem("run", "--env", "crafter", "--policy", "random", "--max-steps", "20", "--episodes", "2", "--json",
                   "--data", str(data), cwd=root)
    assert proc.returncode == 0, proc.stderr
    episode = json.loads(proc.stdout)["episodes"][0]["id"]
    proc = automem("consume", "materializer", "--until-idle", "--snapshot-every", "4", "--data", str(data), cwd=root)
    assert proc.returncode == 0, proc.stderr
    return data, episode


def commands(episode: str, out: Path) -> list[list[str]]:
    return [["episodes"], ["replay", episode], ["memory", episode, "--at", "3"], ["audit", episode],
            ["report", episode, "-o", str(out)], ["store", "check"]]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def truncate(size: int) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        with open(data / "data.mdb", "r+b") as f:
            f.truncate(size)
    return damage


def rewrite(data: Path, fill: Callable[[bytearray], None]) -> None:
    with open(data / "data.mdb", "r+b") as f:
        buf = bytearray(f.read())
        fill(buf)
        f.seek(0)
        f.write(buf)


def zero_page(page: int) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        rewrite(data, lambda buf: buf.__setitem__(slice(page * PAGE, (page + 1) * PAGE), bytes(PAGE)))
    return damage


def flip(offset: int) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        rewrite(data, lambda buf: buf.__setitem__(offset, buf[offset] ^ 0xFF))
    return damage


def text_value(body: bytearray) -> int:
    """Where the text of the record's longest ASCII msgpack string starts (a value: field names are shorter)."""
    found = []
    for m in re.finditer(rb"[\xa8-\xbf]|\xd9[\x08-\xff]", body):
        size = m[0][-1] if len(m[0]) == 2 else m[0][0] & 0x1F
        if body[m.end():m.end() + size].isascii():
            found.append((size, m.end()))
    assert found, "no text value in the record"
    return max(found)[1]


def bad_utf8(db_name: bytes, which: int) -> Callable[[Path], None]:
    """Invalid UTF-8 inside a string of a stored value, resealed so its checksum passes."""
    def damage(data: Path) -> None:
        env = lmdb.open(str(data), max_dbs=8)
        db = env.open_db(db_name)
        with env.begin(write=True) as txn:
            items = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=db)]
            key, value = items[which]
            body = bytearray(value[5:])
            at = text_value(body)
            body[at + 2:at + 4] = b"\xff\xfe"
            txn.put(key, seal(bytes(body)), db=db)
        env.close()
    return damage


def foreign(data: Path) -> None:
    (data / "data.mdb").unlink()
    env = lmdb.open(str(data), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
        for i in range(50):
            txn.put(u64(i), b"x" * 100, db=env.open_db(b"other", txn=txn))
    env.close()


def cases(size: int, seed: int = 10) -> dict[str, list[tuple[str, Callable[[Path], None]]]]:
    rng = random.Random(seed)
    pages = size // PAGE
    return {
        "truncated": [(f"to {n} bytes", truncate(n)) for n in (0, 100, PAGE, 2 * PAGE, size // 3, size // 2, size - PAGE)],
        "zeroed page": [(f"page {p}", zero_page(p)) for p in sorted(rng.sample(range(pages), min(pages, 10)))],
        "flipped byte": [(f"offset {o}", flip(o)) for o in sorted(rng.sample(range(size), 40))],
        "invalid UTF-8": [("first event", bad_utf8(b"events", 0)), ("event 40", bad_utf8(b"events", 40)),
                          ("a snapshot", bad_utf8(b"snapshots", 1))],
        "foreign LMDB": [("other databases and keys", foreign)],
    }


def run_case(source: Path, episode: str, work: Path, name: str, damage: Callable[[Path], None]) -> list[tuple[str, int, int]]:
    copy = work / "store"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("lock.mdb", "leases"))
    damage(copy)
    before = sha(copy / "data.mdb")
    outcomes = []
    for command in commands(episode, work / "page.html"):
        proc = automem(*command, "--data", str(copy), cwd=work)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode in (0, 2, 3), (name, command, proc.returncode, proc.stderr[-2000:])
        assert len(lines) <= 1 and "Traceback" not in proc.stderr, (name, command, proc.stderr[-2000:])
        outcomes.append((command[0] if command[0] != "store" else "store check", proc.returncode, len(lines)))
    assert sha(copy / "data.mdb") == before, f"{name}: a command wrote to the damaged store"
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["truncated", "zeroed page", "flipped byte", "invalid UTF-8", "foreign LMDB"])
def test_damaged_store_never_crashes_a_command(kind: str, recorded: tuple[Path, str], tmp_path: Path) -> None:
    source, episode = recorded
    todo = cases((source / "data.mdb").stat().st_size)[kind]
    dirs = [tmp_path / str(i) for i in range(len(todo))]
    for d in dirs:
        d.mkdir()
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda a: run_case(source, episode, *a), [(d, n, f) for d, (n, f) in zip(dirs, todo)]))
    histogram = collections.Counter((command, rc) for outcomes in results for command, rc, _ in outcomes)
    refused = sum(1 for outcomes in results if any(rc for _c, rc, _n in outcomes))
    print(f"\n{kind}: {len(todo)} cases, {refused} with at least one exit 2/3; "
          + ", ".join(f"{c} {rc}: {n}" for (c, rc), n in sorted(histogram.items())))


@pytest.mark.slow
def test_a_store_that_cannot_be_mapped_is_not_called_damaged(recorded: tuple[Path, str], tmp_path: Path) -> None:
    """Issue 25, 7: under `ulimit -v` every command called a healthy store damaged and told the user to
    restore a backup (advice that loses data). Now: exit 2, one line saying what it is; `store check` too."""
    import subprocess
    import sys

    data = recorded[0]
    cli = f"{sys.executable} -c 'from automem.engine.cli import main; main()'"
    for command in ("episodes", "store check"):
        proc = subprocess.run(["bash", "-c", f"ulimit -v 4000000; {cli} {command} --data {data}"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "could not map the store" in proc.stderr and "not damaged" in proc.stderr
        assert "restore" not in proc.stderr
    healthy = subprocess.run(["bash", "-c", f"{cli} store check --data {data}"], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert healthy.returncode == 0 and "clean" in healthy.stdout
