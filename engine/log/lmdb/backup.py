"""`automem store backup` and `restore`: a consistent copy while writers run, and back.

A backup is LMDB's own compacting copy, made inside one read transaction, so writers go
on and the copy is one committed state. A restore puts a backup's data.mdb in place of
the store's, after checking that the backup is an automem store and that no process
has the store open; the data it replaces is kept aside as data.mdb.before-restore[.N].
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import lmdb

from automem.engine.files import room, scratch, sweep, writing
from automem.engine.log.lmdb.log import LmdbLog, store_error
from automem.schemas.errors import UserError


def _outside(store: Path, target: Path, what: str) -> Path:
    target = target.resolve()
    if target == store or store in target.parents:
        raise UserError(f"{what} {target} is inside the store at {store}: choose a folder outside it")
    return target


def backup_store(log: LmdbLog, dest: Path) -> Path:
    """Copy the open store, compacted, into `dest` (a new or empty folder); returns its data file.
    The copy is made in a scratch folder inside `dest` and renamed: a full disk leaves no data.mdb."""
    dest = _outside(log.path, dest, "backup folder")
    if dest.is_dir():
        sweep(dest)  # what a killed backup left
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"backup folder {dest} is not empty: give a new folder")
    what = "the backup"
    room(dest, what)
    try:
        with writing(dest, what), scratch(dest, what) as work:
            log.env.copy(str(work), compact=True)  # a write failure in LMDB's words: `writing` makes it one line
            os.rename(work / "data.mdb", dest / "data.mdb")
    except lmdb.Error as exc:  # not a write failure: the store's own pages
        raise store_error(log.path, exc) from None
    with LmdbLog(dest, create=False):  # the copy opens as a store: vetted, marked
        pass
    return dest / "data.mdb"


def in_use(store: Path) -> bool:
    """Whether any process has the store open: each holds a shared lock on byte 0 of
    lock.mdb for as long as it has the environment open (LMDB's own exclusivity test)."""
    lock = store / "lock.mdb"
    if not lock.is_file():
        return False
    with open(lock, "rb+") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN, 1, 0)
    return False


def restore_store(backup: Path, store: Path) -> Path | None:
    """Replace the store's data with the backup's; returns where the old data went (None: none)."""
    store = store.resolve()
    backup = _outside(store, backup, "backup folder")
    with LmdbLog(backup, create=False):  # refuses anything that is not a sound automem store
        pass
    if in_use(store):
        raise UserError(f"the store at {store} is open in another process (a run, worker, consumer or reader): "
                        "stop it, then restore")
    what = "the restored store"
    room(store, what, need=(backup / "data.mdb").stat().st_size)
    with writing(store, what), scratch(store, what) as work:
        # the backup is copied in full before the store's data is touched: a full disk changes nothing
        shutil.copyfile(backup / "data.mdb", work / "data.mdb")
        with open(work / "data.mdb", "rb+") as f:
            os.fsync(f.fileno())
        kept = None
        data = store / "data.mdb"
        if data.exists() or data.is_symlink():
            kept = store / "data.mdb.before-restore"
            n = 0
            while kept.exists():
                n += 1
                kept = store / f"data.mdb.before-restore.{n}"
            os.rename(data, kept)
        try:
            os.rename(work / "data.mdb", data)
        except OSError:
            if kept is not None:
                os.rename(kept, data)  # the store as it was
            raise
    return kept
