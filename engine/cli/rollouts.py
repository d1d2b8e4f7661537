"""`automem submit | worker | rollouts`: episodes played over the bus, by workers that take
published requests."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import (
    AgentOpt,
    BusOpt,
    ConcurrencyOpt,
    DataOpt,
    EpisodesOpt,
    HistoryOpt,
    JsonOpt,
    MaxStepsOpt,
    MemoryPolicyOpt,
    ObservationOpt,
    SeedOpt,
    TemperatureOpt,
    TopPOpt,
    emit,
)

rollouts_app = typer.Typer()


@rollouts_app.command()
def submit(
    env: Annotated[str, typer.Option("--env")] = "crafter",
    task: Annotated[Optional[str], typer.Option("--task")] = None,
    episodes: EpisodesOpt = 1, max_steps: MaxStepsOpt = 30, seed: SeedOpt = 0,
    policy: Annotated[str, typer.Option("--policy", help="Used by workers started without --policy.")] = "random",
    memory_policy: MemoryPolicyOpt = None,
    structure: Annotated[str, typer.Option("--structure")] = "auto",
    temperature: TemperatureOpt = None, top_p: TopPOpt = None,
    agent: AgentOpt = "memory", history: HistoryOpt = None, observation: ObservationOpt = "automem",
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Publish rollout requests for workers (`automem worker`) to run."""
    from automem.engine.log import open_log
    from automem.engine.policy.sampling import check_sampling
    from automem.engine.policy.spec import parse_spec
    from automem.engine.rollout.bus import submit as submit_requests
    from automem.engine.rollout.request import RunRequest
    from automem.schemas.agent import agent_spec

    for spec in filter(None, (policy, memory_policy)):
        parse_spec(spec)
    req = RunRequest(env=env, task=task, episodes=episodes, max_steps=max_steps, seed=seed, policy=policy,
                     memory_policy=memory_policy, structure=structure, sampling=check_sampling(temperature, top_p),
                     agent=agent_spec(agent, history, observation))
    with open_log(bus, data) as log:
        ids = submit_requests(log, req)
    emit({"requests": ids}, json, None)


@rollouts_app.command()
def worker(
    policy: Annotated[Optional[str], typer.Option("--policy", help="Overrides the policy named in requests.")] = None,
    memory_policy: Annotated[Optional[str], typer.Option("--memory-policy", help="Overrides the memory policy named in requests.")] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once no request is waiting.")] = False,
    concurrency: ConcurrencyOpt = 1,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """A rollout worker: takes requests in a consumer group; one completed episode each."""
    from automem.consumers.serve import serve_worker

    handled = serve_worker(bus, data, policy, memory_policy, concurrency, until_idle)
    emit({"handled": handled}, json, None)


@rollouts_app.command()
def rollouts(data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """Requests with their one completed episode (or none yet) and how many attempts they took."""
    from automem.engine.log import open_log
    from automem.engine.rollout.bus import status

    with open_log(bus, data, create=False) as log:
        rows = status(log)
    from automem.engine.views.terminal import markup

    table = Table("request", "episode", "attempts")
    for r in rows:
        table.add_row(markup(r["request"]), markup(r["episode"] or "-"), str(r["attempts"]))
    emit({"rollouts": rows}, json, table)
