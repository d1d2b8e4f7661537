"""`automem bench`: the benchmarks, figures as ratios against a baseline run in the same process."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from automem.engine.cli.options import BusOpt, JsonOpt, emit, err
from automem.schemas.errors import UserError

bench_app = typer.Typer()


@bench_app.command()
def bench(
    name: Annotated[str, typer.Argument(help="eventlog | memory | overhead | replay | rollout | score | train | loop2 | learning | probe")],
    env: Annotated[Optional[str], typer.Option("--env", help="Game, for benchmarks that run one.")] = None,
    policy: Annotated[Optional[str], typer.Option("--policy", help="rollout: the policy (default local; serve / serve-plain: the embedded model behind transformers serve, with / without continuous batching; vllm: vLLM beside transformers, each alone and with an adapter, in .venv-vllm).")] = None,
    concurrency: Annotated[Optional[str], typer.Option("--concurrency", help="rollout: episodes in flight to measure, e.g. 1,4,8.")] = None,
    bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Benchmarks: figures as ratios against a baseline run in the same process."""
    from automem.bench import BENCHES, BenchArgs
    from automem.schemas.limits import check_concurrency

    if name not in BENCHES:
        raise UserError(f"unknown benchmark {name!r}: one of {', '.join(sorted(BENCHES))}")
    try:
        levels = tuple(int(c) for c in concurrency.split(",")) if concurrency else ()
    except ValueError:
        raise UserError(f"--concurrency {concurrency!r}: give counts separated by commas, e.g. 1,4,8") from None
    for level in levels:
        check_concurrency(level)
    if policy is not None and policy not in ("serve", "serve-plain", "vllm"):
        from automem.engine.policy.spec import parse_spec

        parse_spec(policy)
    err.print(f"[dim]running bench {name} ...[/dim]")
    emit(BENCHES[name](BenchArgs(env=env, bus=bus, policy=policy, concurrency=levels)), json)
