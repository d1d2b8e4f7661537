"""`automem structure list | show | diff`: the memory structures loop 1 proposed, evaluated, accepted or rejected."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, DataOpt, EnvOpt, JsonOpt, emit

structure_app = typer.Typer(help="The memory structures loop 1 proposed, evaluated, accepted or rejected.",
                            no_args_is_help=True)


@structure_app.command("list")
def list_structures(env: EnvOpt = "crafter", data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """Every structure of an env with its parent, status and evaluations."""
    from automem.engine.evolve.history import history
    from automem.engine.log import open_log
    from automem.engine.views.terminal import markup

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
    from automem.engine.structure.lookup import find_structure
    from automem.engine.views.terminal import safe

    with open_log(bus, data, create=False) as log:
        structure = find_structure(log, env, version)
    if json:
        emit(structure, True)
    else:
        print(safe(msgspec.json.format(msgspec.json.encode(structure), indent=2).decode()))


@structure_app.command("diff")
def diff_structures(a: Annotated[str, typer.Argument(help="The older version.")],
                    b: Annotated[str, typer.Argument(help="The newer version.")],
                    env: EnvOpt = "crafter", data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """What changed: prompts, files, commands, budgets and limits (structural changes marked)."""
    from automem.engine.log import open_log
    from automem.engine.structure.diff import diff
    from automem.engine.structure.lookup import find_structure
    from automem.engine.views.terminal import safe

    with open_log(bus, data, create=False) as log:
        changes = diff(find_structure(log, env, a), find_structure(log, env, b))
    if json:
        emit({"from": a, "to": b, "changes": changes}, True)
        return
    if not changes:
        print(f"{a} and {b} are the same document")
    for c in changes:
        print(safe(f"== {c.part}: {c.what}" + ("" if c.structural else " (wording)")))
        print("\n".join(safe(line) for line in c.lines))
