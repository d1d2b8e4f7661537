"""Files beside the log: datasets, adapters, model caches, pages, backups.

The log is LMDB's to keep whole; these are ours. A read-only folder, a full disk, a missing
or unwritable parent or a file where a folder should be is one line naming the path (never a
traceback), found before long work where it can be (`room`), and no file is ever half-written
under its final name (`write_file`; folders are built in a `scratch` folder and `settle`d by
one rename).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automem.schemas.errors import UserError

MARGIN = 1 << 20  # what a folder must have free beyond a write's own size: its small files
SCRATCH = ".scratch-"
_MAKING = ".making-"  # a scratch folder before it holds its lock: never swept

_FULL = ("is on a full disk", "free space on it and run the command again")
_FILE = ("has a file where a folder should be", "move that file away")
REASONS: dict[int, tuple[str, str]] = {
    errno.EROFS: ("is on a read-only file system", "mount it writable"),
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _FULL,
    errno.EFBIG: ("would pass the file size limit (ulimit -f)", "raise the limit"),
    errno.EACCES: ("is not writable by this user", "give this user write permission on it"),
    errno.EPERM: ("is not writable by this user", "give this user write permission on it"),
    errno.ENOTDIR: _FILE,
    errno.EEXIST: _FILE,
    errno.EISDIR: ("is a folder where a file should be", "move that folder away"),
}

# Failures that are about the place written whatever the call was (a refused read is not among them).
WRITE_SIDE = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def problem(exc: OSError, path: Path, what: str) -> UserError | None:
    """The one line a write failure becomes, or None for a failure that is not about the place written."""
    if exc.errno not in REASONS:
        return None
    reason, fix = REASONS[exc.errno]
    named = exc.filename2 if isinstance(exc.filename2, str) else exc.filename  # a rename's target, else the path
    where = _blocker(Path(named)) if REASONS[exc.errno] == _FILE and isinstance(named, str) else path
    return UserError(f"cannot write {what}: {_outside_scratch(where)} {reason}; {fix}")


def _outside_scratch(path: Path) -> Path:
    """The folder holding `path`'s scratch folder, if it lies in one: scratch is ours, not a place the user knows."""
    parts = path.parts
    return next((Path(*parts[:i]) for i, part in enumerate(parts) if part.startswith((SCRATCH, _MAKING))), path)


def _blocker(path: Path) -> Path:
    """The file that stands where `path` needs a folder (the nearest to the root), else `path`."""
    return next((p for p in (*reversed(path.parents), path) if p.exists() and not p.is_dir()), path)


def errno_in(text: str) -> int | None:
    """The write failure a library's own error reports in words (LMDB: the errno's text;
    safetensors: `os error N`), or None."""
    if (found := re.search(r"os error (\d+)", text)) and int(found.group(1)) in REASONS:
        return int(found.group(1))
    return next((code for code in sorted(REASONS) if os.strerror(code) in text), None)


@contextmanager
def writing(path: Path, what: str) -> Iterator[Path]:
    """Raise a write failure under `path` as the one line `problem` gives; another library's
    error that reports one in words (LMDB's, safetensors', shutil's copytree's) counts too."""
    try:
        yield path
    except OSError as exc:
        code = exc.errno if exc.errno is not None else errno_in(str(exc))
        if code is None or (error := problem(OSError(code, exc.strerror or str(exc), exc.filename, None,
                                                     exc.filename2), path, what)) is None:
            raise
        raise error from None
    except Exception as exc:
        if type(exc).__module__.startswith(("automem", "builtins")) or (code := errno_in(str(exc))) is None:
            raise
        raise problem(OSError(code, str(exc)), path, what) or exc from None


def room(folder: Path, what: str, need: int = 0) -> Path:
    """`folder` proven writable (a probe file is made and removed in it, or in the nearest
    folder above it that exists, since a refused command leaves no folder behind) with `need`
    bytes and a margin free: checked before long work, so a read-only folder or a full disk
    costs nothing."""
    with writing(folder, what):
        there = next(p for p in (folder, *folder.parents) if p.exists())
        if not there.is_dir():
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=there)
        os.close(fd)
        os.unlink(probe)
        free = shutil.disk_usage(there).free
    if free < need + MARGIN:
        raise UserError(f"cannot write {what}: {folder} has {free:,} bytes free and this needs {need + MARGIN:,}; "
                        "free space on it and run the command again")
    return folder


def write_file(path: Path, data: bytes | str, what: str) -> Path:
    """`path` holding `data`, written beside it first and renamed: a failure leaves the old file
    (or none), never a half-written one. Made with the umask's permissions, as `open` makes files."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with writing(path, what):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
        try:
            with open(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return path


@contextmanager
def scratch(root: Path, what: str) -> Iterator[Path]:
    """A new folder in `root` for work that a rename (`settle`) turns into a final file or
    folder, removed on the way out. It holds a lock for as long as its process lives (flock,
    which the kernel drops when the process dies, however it dies), so folders found with a
    free lock were left by a killed process and are removed first: no host name or pid is
    trusted, so containers and shared folders cannot fool it."""
    with writing(root, what):
        root.mkdir(parents=True, exist_ok=True)
        sweep(root)
        making = Path(tempfile.mkdtemp(prefix=_MAKING, dir=root))
        fd = os.open(making, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        work = making.with_name(SCRATCH + making.name.removeprefix(_MAKING))
        os.rename(making, work)  # only now can a sweep see it, already locked
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)


def sweep(root: Path) -> None:
    """Remove the scratch folders in `root` that no live process holds."""
    for old in sorted(root.iterdir()):
        if old.name.startswith(SCRATCH) and _abandoned(old):
            shutil.rmtree(old, ignore_errors=True)


def _abandoned(folder: Path) -> bool:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def settle(built: Path, target: Path) -> bool:
    """Rename `built` to `target`; False when another process settled the same target first
    (content-addressed: theirs is the same), and a failure for any other reason."""
    try:
        os.rename(built, target)
    except OSError:
        if not target.exists():
            raise
        return False
    return True
