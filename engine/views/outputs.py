"""Where a command may write a file of its own: never inside an embedded store's folder,
which only the log writes (a page written over data.mdb would lose every episode)."""

from __future__ import annotations

from pathlib import Path

from automem.engine.files import room
from automem.engine.log import data_dir
from automem.schemas.errors import UserError


def store_folders(bus: str | None, data: str | None) -> list[Path]:
    """The embedded store folders a `--bus`/`--data` pair touches, resolved."""
    folders = [data_dir(data)]
    if bus and bus.startswith("lmdb://"):
        folders.append(Path(bus[len("lmdb://"):]))
    return [f.expanduser().resolve() for f in folders]


def output_file(output: str, stores: list[Path], example: str) -> Path:
    """The file `output` names, checked: not empty, not a folder, its folder exists, and
    (symlinks followed) not inside any of `stores`."""
    if not output.strip():
        raise UserError(f"give the file to write with -o, such as {example}")
    path = Path(output).expanduser()
    target = path.resolve()
    for store in stores:
        if target == store or store in target.parents:
            raise UserError(f"refusing to write {output}: it is inside the store {store}, which only the log "
                            f"writes; give a path outside it, such as {example}")
    if path.is_dir():
        raise UserError(f"cannot write {output}: it is a folder; give a file name such as {example}")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {output}: folder {str(path.parent)!r} does not exist; create it first")
    room(path.parent, "the page")  # before the work that makes the page, not after it
    return path
