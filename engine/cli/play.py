"""`automem run`: play episodes here, in this process, every event written to the log."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from automem.engine.cli.episodes import episodes_table
from automem.engine.cli.options import (
    AgentOpt,
    BusOpt,
    ConcurrencyOpt,
    DataOpt,
    EnvOpt,
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
from automem.schemas.limits import MAX_WORKERS

play_app = typer.Typer()


@play_app.command()
def run(
    env: EnvOpt = "crafter",
    task: Annotated[Optional[str], typer.Option("--task", help="Task of the env (minihack: see `automem envs`).")] = None,
    episodes: EpisodesOpt = 1, max_steps: MaxStepsOpt = 30, seed: SeedOpt = 0,
    policy: Annotated[str, typer.Option("--policy", help="local | local:PATH[+adapter:PATH] | openai:MODEL@URL | vllm:MODEL | file:PATH | random")] = "local",
    memory_policy: MemoryPolicyOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=MAX_WORKERS)] = 1,
    concurrency: ConcurrencyOpt = 1,
    structure: Annotated[str, typer.Option("--structure", help="auto | v0 | v0-small | v0-small-lookup | a stored version")] = "auto",
    temperature: TemperatureOpt = None, top_p: TopPOpt = None,
    agent: AgentOpt = "memory", history: HistoryOpt = None, observation: ObservationOpt = "automem",
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Run episodes, writing every event to the log; ends with a table and the JSON summary."""
    from automem.engine.policy.sampling import check_sampling
    from automem.engine.rollout.request import RunRequest
    from automem.engine.rollout.run import run as run_episodes
    from automem.schemas.agent import agent_spec

    rows = run_episodes(RunRequest(env=env, task=task, episodes=episodes, max_steps=max_steps, seed=seed,
                                   policy=policy, memory_policy=memory_policy, structure=structure,
                                   workers=workers, concurrency=concurrency, sampling=check_sampling(temperature, top_p), bus=bus, data=data,
                                   agent=agent_spec(agent, history, observation)))
    emit({"episodes": rows}, json, episodes_table(rows))
