"""`automem store check | backup | restore`: the embedded store's files, for its operators.

`check` exits 0 when the store is clean; with problems it prints the full list (a table,
or `--json`) and exits 2 with a one-line summary on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, DataOpt, JsonOpt, emit
from automem.schemas.errors import UserError

store_app = typer.Typer(no_args_is_help=True, help="Check, back up and restore the embedded LMDB store.")


@store_app.command()
def check(data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """Verify every page, record (checksum, decoding), index entry and head; exit 2 on problems."""
    from automem.engine.log import store_dir
    from automem.engine.log.lmdb.check import check_store

    report = check_store(store_dir(bus, data))
    summary = (f"{report.store}: {report.streams} streams, {report.events} events, {report.snapshots} snapshots, "
               f"store version {report.store_version}")
    if not report.problems and not json:
        print(f"{summary}: clean")
        return
    table = Table("kind", "stream", "seq", "offset", "problem", title=summary)
    for p in report.problems:
        table.add_row(p.kind, p.stream or "", "" if p.seq is None else str(p.seq),
                      "" if p.offset is None else str(p.offset), p.detail)
    emit(report, json, table)
    if report.problems:
        raise UserError(f"store check found {len(report.problems)} problem(s) in {report.store} (listed above): "
                        "restore a backup with `automem store restore BACKUP`")


@store_app.command()
def backup(
    dest: Annotated[str, typer.Argument(help="A new or empty folder for the copy.")],
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """A consistent, compacted copy of the store, taken while writers run."""
    from automem.engine.log import LmdbLog, store_dir
    from automem.engine.log.lmdb.backup import backup_store

    with LmdbLog(store_dir(bus, data), create=False) as log:
        copy = backup_store(log, Path(dest))
    emit({"store": str(log.path), "backup": str(copy.parent), "bytes": copy.stat().st_size}, json, None)


@store_app.command()
def restore(
    source: Annotated[str, typer.Argument(help="A folder made by `automem store backup`.")],
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Replace the store's data with a backup's; the old data is kept as data.mdb.before-restore."""
    from automem.engine.log import store_dir
    from automem.engine.log.lmdb.backup import restore_store

    target = store_dir(bus, data).resolve()
    kept = restore_store(Path(source), target)
    emit({"store": str(target), "restored_from": str(Path(source).resolve()),
          "kept": None if kept is None else str(kept)}, json, None)
