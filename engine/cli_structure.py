"""`automem structure list|show|diff` and `automem evolve`: loop 1 at the command line. Thin."""

from __future__ import annotations

from typing import Annotated, Optional

import msgspec
import typer
from rich.table import Table

from automem.engine.cli import BusOpt, DataOpt, JsonOpt, emit
from automem.schemas.errors import UserError

structure_app = typer.Typer(help="The memory structures loop 1 proposed, evaluated, accepted or rejected.",
                            no_args_is_help=True)
EnvOpt = Annotated[str, typer.Option("--env", help="crafter | nethack | minihack")]


def _load(log: object, env: str, version: str):  # -> Structure
    from automem.engine.evolve.history import document
    from automem.engine.structures import v0

    found = document(log, env, version)  # type: ignore[arg-type]
    if found is None and version in ("v0", "v0-small"):
        found = v0(env, small=version == "v0-small")
    if found is None:
        raise UserError(f"no structure {version!r} for {env}: `automem structure list --env {env}` lists them")
    return found


@structure_app.command("list")
def list_structures(env: EnvOpt = "crafter", data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """Every structure of an env with its parent, status and evaluations."""
    from automem.engine.evolve.history import history
    from automem.engine.log import open_log
    from automem.engine.terminal import markup

    with open_log(bus, data, create=False) as log:
        entries = history(log, env)
    table = Table("version", "parent", "status", "select", "report", "reviewer", "rationale / reason")
    for e in entries:
        means = {ev.purpose: f"{ev.mean_progression:.3f}" for ev in e.evaluations}
        table.add_row(markup(e.version), markup(e.parent or "-"), e.status, means.get("select", "-"),
                      means.get("report", "-"), markup(e.reviewer or "-"), markup((e.reason or e.rationale)[:80]))
    emit({"structures": entries}, json, table)


@structure_app.command("show")
def show_structure(version: Annotated[str, typer.Argument(help="A version (see `automem structure list`).")],
                   env: EnvOpt = "crafter", data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """The whole structure document."""
    from automem.engine.log import open_log
    from automem.engine.terminal import safe

    with open_log(bus, data, create=False) as log:
        structure = _load(log, env, version)
    if json:
        emit(structure, True)
    else:
        print(safe(msgspec.json.format(msgspec.json.encode(structure), indent=2).decode()))


@structure_app.command("diff")
def diff_structures(a: Annotated[str, typer.Argument(help="The older version.")],
                    b: Annotated[str, typer.Argument(help="The newer version.")],
                    env: EnvOpt = "crafter", data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """What changed: prompts, files, commands, budgets and limits (structural changes marked)."""
    from automem.engine.evolve.diff import diff
    from automem.engine.log import open_log
    from automem.engine.terminal import safe

    with open_log(bus, data, create=False) as log:
        changes = diff(_load(log, env, a), _load(log, env, b))
    if json:
        emit({"from": a, "to": b, "changes": changes}, True)
        return
    if not changes:
        print(f"{a} and {b} are the same document")
    for c in changes:
        print(safe(f"== {c.part}: {c.what}" + ("" if c.structural else " (wording)")))
        print("\n".join(safe(line) for line in c.lines))
