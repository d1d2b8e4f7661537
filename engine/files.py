"""Files beside the log: datasets, adapters, model caches, pages, backups.

The log is LMDB's to keep whole; these are ours. A read-only folder, a full disk, a missing
or unwritable parent or a file where a folder should be is one line naming the path (never a
traceback), found before long work where it can be (`room`), and no file is ever half-written
under its final name (`write_file`, and the callers' scratch-then-rename folders).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automem.schemas.errors import UserError

MARGIN = 1 << 20  # what a folder must have free beyond a write's own size: its small files
SCRATCH = ".scratch"

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
    if REASONS[exc.errno] == _FILE:
        where = _blocker(Path(exc.filename) if isinstance(exc.filename, str) else path)
    else:  # a scratch folder is ours, not a place the user knows
        where = path.parent if path.name.startswith(SCRATCH) else path
    return UserError(f"cannot write {what}: {where} {reason}; {fix}")


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
    """Raise a write failure under `path` as the one line `problem` gives."""
    try:
        yield path
    except OSError as exc:
        if (error := problem(exc, path, what)) is None:
            raise
        raise error from None


def room(folder: Path, what: str, need: int = 0) -> Path:
    """`folder`, created with its parents, proven writable (a probe file is made and removed)
    with `need` bytes and a margin free: checked before long work, so a read-only folder or a
    full disk costs nothing."""
    with writing(folder, what):
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
        free = shutil.disk_usage(folder).free
        if free < need + MARGIN:
            raise OSError(errno.ENOSPC, f"{free} bytes free, {need + MARGIN} needed", str(folder))
    return folder


def write_file(path: Path, data: bytes | str, what: str) -> Path:
    """`path` holding `data`, written beside it first and renamed: a failure leaves the old file
    (or none), never a half-written one."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with writing(path, what):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(scratch, 0o644)  # mkstemp's 0600 would hide a page from the people it is for
            os.replace(scratch, path)
        finally:
            if os.path.exists(scratch):
                os.unlink(scratch)
    return path


def scratch(root: Path, what: str) -> Path:
    """A new folder in `root` for work that one rename turns into a final folder. Its name says
    which process of which host made it, so folders left by a killed process of this host are
    removed here first: a SIGKILL leaves nothing behind for long."""
    mine = f"{SCRATCH}+{socket.gethostname()}+"  # "+" is in no host name
    with writing(root, what):
        root.mkdir(parents=True, exist_ok=True)
        for old in root.iterdir():
            pid = old.name[len(mine):].split("+", 1)[0]
            if old.name.startswith(mine) and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{mine}{os.getpid()}+", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
