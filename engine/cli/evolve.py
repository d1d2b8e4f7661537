"""`automem evolve`: loop 1, a reviewer revising the memory structure, at the command line."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, DataOpt, EnvOpt, JsonOpt, emit
from automem.schemas.errors import UserError

evolve_app = typer.Typer()


@evolve_app.command()
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
    probes: Annotated[bool, typer.Option(
        "--probes", help="Also probe the selection and report episodes (the --policy reads): probe_accuracy, reported.")] = False,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Loop 1: a reviewer revises the structure from whole trajectories; kept only on strict improvement."""
    from automem.engine.evolve.loop import Budget
    from automem.engine.evolve.loop import evolve as run_evolve
    from automem.engine.log import local_folder, open_log, open_store
    from automem.engine.policy.spec import make_policy, parse_spec
    from automem.engine.probes.figure import probe_figure
    from automem.engine.rollout.request import RunRequest
    from automem.engine.views.terminal import markup
    from automem.schemas.limits import check_seeds, parse_seeds

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
                            list(range(seed, seed + episodes)), *chosen, Budget(reviewer_turns, reviewer_tokens),
                            probe=probe_figure(log, policy) if probes else None)
    table = Table("#", "candidate", "valid", "select (cand / parent)", "report (cand / parent)", "accepted", "reason",
                  title=f"loop 1 on {env}: {result.current} in force")
    for i, it in enumerate(result.iterations):
        pair = lambda part: (f"{part['candidate']['mean_progression']:.3f} / {part['parent']['mean_progression']:.3f}"  # noqa: E731
                             if part else "-")
        table.add_row(str(i), markup(it.candidate or "-"), "yes" if it.valid else "no", pair(it.select),
                      pair(it.report), "yes" if it.accepted else "no", markup(it.reason[:100]))
    emit(result, json, table)
