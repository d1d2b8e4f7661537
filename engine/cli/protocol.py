"""`automem balrog`: BALROG's protocol on an agent, its figures beside the published ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import (
    AgentOpt,
    BusOpt,
    ConcurrencyOpt,
    DataOpt,
    HistoryOpt,
    JsonOpt,
    ObservationOpt,
    TemperatureOpt,
    TopPOpt,
    emit,
    err,
)
from automem.schemas.errors import UserError
from automem.schemas.limits import MAX_EPISODES, MAX_SEED, MAX_STEPS

protocol_app = typer.Typer()


@protocol_app.command()
def balrog(
    policy: Annotated[str, typer.Option("--policy", help="The model that plays (any policy spec).")] = "local",
    agent: AgentOpt = "history", history: HistoryOpt = None, observation: ObservationOpt = "automem",
    envs: Annotated[str, typer.Option("--envs", help="Some of crafter,minihack,nethack.")] = "crafter,minihack,nethack",
    episodes: Annotated[Optional[str], typer.Option(
        "--episodes", help="Per task: N, or ENV=N,... (default BALROG's: crafter=10, minihack=5 per task, nethack=5).")] = None,
    max_steps: Annotated[Optional[str], typer.Option(
        "--max-steps", help="Per episode: N, or ENV=N,..., at most BALROG's (crafter=2000, minihack=100, nethack=100000).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="First seed of every task.")] = 0,
    structure: Annotated[str, typer.Option("--structure", help="The memory agent's structure.")] = "auto",
    temperature: TemperatureOpt = None, top_p: TopPOpt = None, concurrency: ConcurrencyOpt = 1,
    remote: Annotated[bool, typer.Option("--remote", help="Have `automem worker`s on the bus play the episodes.")] = False,
    published: Annotated[bool, typer.Option("--published", help="Show every published row, not only the model's.")] = False,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write the figures as an HTML page here.")] = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """BALROG's protocol: per env mean progression ± standard error, departures listed; resumable."""
    from automem.engine.files import room, write_file
    from automem.engine.log import local_folder, open_log
    from automem.engine.policy.sampling import check_sampling
    from automem.engine.policy.spec import parse_spec
    from automem.engine.protocol import balrog as protocol
    from automem.engine.protocol.page import page
    from automem.engine.rollout.players import Local, Player, Remote
    from automem.schemas.agent import agent_spec

    spec = agent_spec(agent, history, observation)
    chosen = protocol.parse_envs(envs)
    sampling = check_sampling(temperature, top_p)
    parse_spec(policy)
    if html is not None and not html.parent.is_dir():
        raise UserError(f"--html {html}: its folder does not exist")
    if html is not None:
        room(html.parent, "the --html page")  # before the episodes, not after them
    protocol.check(chosen)
    steps = protocol.plan(chosen, protocol.per_env(episodes, chosen, "--episodes", MAX_EPISODES),
                          protocol.per_env(max_steps, chosen, "--max-steps", MAX_STEPS))
    player: Player = Remote() if remote else Local(concurrency, bar=True)
    with open_log(bus, data) as log:
        result = protocol.run(log, local_folder(bus, data), player, policy, spec, steps, seed, sampling, structure,
                              concurrency, published)
    if html is not None:
        write_file(html, page(result), "the --html page (the episodes are kept: run again to write it)")
        err.print(f"[dim]wrote {html}[/dim]")
    emit(result, json, _table(result))
    if not json:
        err.print("departures from BALROG's protocol:\n" + "\n".join(f"  - {d}" for d in result.departures),
                  markup=False, highlight=False, soft_wrap=True)


def _table(result) -> Table:
    from automem.engine.protocol.balrog import published_average, published_figure

    envs = [e.env for e in result.envs]
    table = Table("", *envs, "average", title=f"BALROG protocol: progression % ± standard error ({result.sampling})")
    table.add_row(f"this run: {result.model} ({result.agent})",
                  *(f"{e.progression:.2f} ± {e.standard_error:.2f}  (n={e.episodes})" for e in result.envs),
                  f"{result.average_progress:.2f} ± {result.standard_error:.2f}")
    for row in result.published:
        cells = [published_figure(row, env) for env in envs] + [published_average(row, envs)]
        table.add_row(row.name, *("—" if f is None else f"{f.value:.2f}" + ("" if f.error is None else f" ± {f.error:.2f}")
                                  for f in cells))
    return table
