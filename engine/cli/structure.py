"""`automem structure list|show|diff` and `automem evolve`: loop 1 at the command line. Thin."""

from __future__ import annotations

from typing import Annotated, Optional

import msgspec
import typer
from rich.table import Table

from automem.engine.cli.app import BusOpt, DataOpt, JsonOpt, emit
from automem.schemas.errors import UserError

structure_app = typer.Typer(help="The memory structures loop 1 proposed, evaluated, accepted or rejected.",
                            no_args_is_help=True)
EnvOpt = Annotated[str, typer.Option("--env", help="crafter | nethack | minihack")]


def _load(log: object, env: str, version: str):  # -> Structure
    from automem.engine.structure.registry import stored_structures
    from automem.engine.structure.seeds import v0

    found = stored_structures(log, env).get(version)  # type: ignore[arg-type]
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
    from automem.engine.views.terminal import safe

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
    from automem.engine.log import open_log
    from automem.engine.structure.diff import diff
    from automem.engine.views.terminal import safe

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


def evolve(
    env: EnvOpt = "crafter",
    reviewer: Annotated[str, typer.Option("--reviewer", help="The reviewing model (any --policy spec).")] = "",
    iterations: Annotated[int, typer.Option("--iterations", min=1, max=100)] = 1,
    select_seeds: Annotated[str, typer.Option("--select-seeds", help="Seeds that decide acceptance: A-B or A,B,C.")] = "",
    report_seeds: Annotated[str, typer.Option("--report-seeds", help="Held-out seeds, reported only.")] = "",
    task: Annotated[Optional[str], typer.Option("--task")] = None,
    episodes: Annotated[int, typer.Option("--episodes", min=1, max=1000, help="Episodes reviewed per iteration (seeds SEED, SEED+1, ...).")] = 3,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, max=10_000_000)] = 30,
    seed: Annotated[int, typer.Option("--seed", min=0, help="First training seed.")] = 0,
    policy: Annotated[str, typer.Option("--policy")] = "local",
    memory_policy: Annotated[Optional[str], typer.Option("--memory-policy")] = None,
    structure: Annotated[str, typer.Option("--structure", help="Where to start: auto (the accepted one), v0, ...")] = "auto",
    reviewer_tokens: Annotated[int, typer.Option("--reviewer-tokens", min=16, max=65_536, help="Tokens of one reviewer answer.")] = 4096,
    reviewer_turns: Annotated[int, typer.Option("--reviewer-turns", min=1, max=50, help="Reviewer answers per iteration.")] = 6,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Loop 1: a reviewer revises the structure from whole trajectories; kept only on strict improvement."""
    from automem.engine.evolve.loop import Budget
    from automem.engine.evolve.loop import evolve as run_evolve
    from automem.engine.log import local_folder, open_log, open_store
    from automem.engine.policy.spec import make_policy, parse_spec
    from automem.engine.rollout.limits import check_seeds, parse_seeds
    from automem.engine.rollout.run import RunRequest
    from automem.engine.views.terminal import markup

    if not reviewer or not select_seeds or not report_seeds:
        raise UserError("evolve needs --reviewer SPEC, --select-seeds A-B and --report-seeds C-D")
    for spec in filter(None, (policy, memory_policy, reviewer)):
        parse_spec(spec)
    check_seeds(seed, episodes)
    chosen = parse_seeds(select_seeds), parse_seeds(report_seeds)
    req = RunRequest(env=env, task=task, episodes=episodes, max_steps=max_steps, seed=seed, policy=policy,
                     memory_policy=memory_policy, structure=structure, bus=bus, data=data)
    model = make_policy(reviewer)
    with open_log(bus, data) as log, open_store(bus, data) as store:
        result = run_evolve(log, local_folder(bus, data), store, req, model, iterations,
                            list(range(seed, seed + episodes)), *chosen, Budget(reviewer_turns, reviewer_tokens))
    table = Table("#", "candidate", "valid", "select (cand / parent)", "report (cand / parent)", "accepted", "reason",
                  title=f"loop 1 on {env}: {result.current} in force")
    for i, it in enumerate(result.iterations):
        pair = lambda part: (f"{part['candidate']['mean_progression']:.3f} / {part['parent']['mean_progression']:.3f}"  # noqa: E731
                             if part else "-")
        table.add_row(str(i), markup(it.candidate or "-"), "yes" if it.valid else "no", pair(it.select),
                      pair(it.report), "yes" if it.accepted else "no", markup(it.reason[:100]))
    emit(result, json, table)
