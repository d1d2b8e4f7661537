"""`automem train` and `automem models`: loop 2's trainer and its versions on the command line."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, DataOpt, JsonOpt, emit

train_app = typer.Typer()


@train_app.command()
def train(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset id, or latest (the one built last).")] = "latest",
    base: Annotated[str, typer.Option("--base", help="local (SmolLM2) | local:PATH | PATH, a Hugging Face model folder.")] = "local",
    config: Annotated[Optional[str], typer.Option("--config", help="TOML or JSON file of training settings over the size's defaults.")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, max=10_000_000, help="Optimizer steps (default: whole epochs).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda")] = "auto",
    distill: Annotated[bool, typer.Option("--distill", help="The answers are another model's, and that is meant.")] = False,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """LoRA memory specialist from a dataset (loss on the answers only); emits a model version."""
    from automem.engine.log import local_folder, open_log
    from automem.engine.training import TrainRequest
    from automem.engine.training import train as train_version
    from automem.engine.views.terminal import markup

    folder = local_folder(bus, data)
    request = TrainRequest(dataset=dataset, base=base, config=config, max_steps=max_steps, device=device,
                           distill=distill)
    with open_log(bus, data, create=False):
        pass  # the store must exist: training appends to it but never creates one
    with open_log(bus, data) as log:
        result = train_version(log, folder, request)
    if result is None:
        return  # a multi-GPU run's other ranks: rank 0 reports
    table = Table("model version", "dataset", "base", "loss", "tokens", "steps", "device", "adapter",
                  title="model version created" if result.new else "trained before (same dataset, base and config): unchanged")
    table.columns[0].no_wrap = True
    table.columns[-1].overflow = "fold"
    table.add_row(result.model_version, result.dataset, markup(result.base), f"{result.loss:.4f}",
                  str(result.tokens), str(result.steps), result.device, markup(result.adapter))
    emit(result, json, table)

@train_app.command()
def models(data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """Every model version with its base, dataset, loss, evaluations and promotions."""
    from automem.engine.log import open_log
    from automem.engine.models.registry import versions
    from automem.engine.views.terminal import markup

    with open_log(bus, data, create=False) as log:
        rows = list(versions(log).values())
    table = Table("model version", "base", "dataset", "loss", "tokens", "steps", "device", "evaluations", "promoted")
    table.columns[0].no_wrap = True
    for r in rows:
        evals = "; ".join(f"{e.env or '?'} {e.mean_progression:.3f} vs {e.baseline or 'base'} on {len(e.seeds)} seeds"
                          for e in r.evaluations) or "-"
        promoted = "; ".join(f"{p.role} ({p.metric} {p.delta:+.3f})" for p in r.promotions) or "-"
        table.add_row(r.model_version, markup(r.base), r.dataset, f"{r.loss:.4f}", str(r.tokens), str(r.steps),
                      r.device + (" distill" if r.distill else ""), markup(evals), markup(promoted))
    emit({"models": rows}, json, table)
