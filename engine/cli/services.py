"""`automem consume`: a consumer service over the log."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from automem.engine.cli.options import BusOpt, DataOpt, JsonOpt, emit

services_app = typer.Typer()


@services_app.command()
def consume(
    name: Annotated[str, typer.Argument(help="materializer | scorer | trainer | publisher")],
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once caught up instead of following.")] = False,
    every: Annotated[int, typer.Option("--snapshot-every", min=1, max=1 << 30, help="materializer: write-ops between snapshots.")] = 64,
    vllm: Annotated[Optional[str], typer.Option("--vllm", help="publisher: the vLLM server (http://HOST:PORT).")] = None,
    adapter_root: Annotated[Optional[str], typer.Option("--adapter-root", help="publisher: the adapters' folder as the vLLM host sees it.")] = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Run a consumer service over the log; its state and position live in --data."""
    from automem.consumers.serve import serve_consumer

    stats = serve_consumer(name, bus, data, until_idle, every, vllm, adapter_root)
    emit(stats, json, None)
