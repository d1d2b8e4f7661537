"""`automem dataset build`: the dataset engine of loop 2 on the command line."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, DataOpt, JsonOpt, emit

dataset_app = typer.Typer(no_args_is_help=True, help="Training sets from scored memory decisions.")


@dataset_app.command()
def build(
    scorer: Annotated[Optional[str], typer.Option("--scorer", help="Scorer version (default: the newest rule scorer in the store).")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", help="Keep decisions scoring at least X (default: above 0).")] = None,
    top: Annotated[Optional[float], typer.Option("--top", help="Keep the best fraction F of the decisions instead.")] = None,
    top_episodes: Annotated[Optional[float], typer.Option("--top-episodes", help="Only decisions of the best fraction F of episodes (progression, then return).")] = None,
    balance: Annotated[bool, typer.Option("--balance/--no-balance", help="As many LOG as PLAN items, per game.")] = True,
    max_examples: Annotated[Optional[int], typer.Option("--max-examples", min=1, help="At most N examples, the best.")] = None,
    env: Annotated[Optional[str], typer.Option("--env", help="Only episodes of this game.")] = None,
    sample: Annotated[Optional[int], typer.Option("--random", help="Instead of by score: N decisions drawn at random (the ablation of credit), every other filter the same.")] = None,
    sample_seed: Annotated[int, typer.Option("--random-seed", help="The draw's seed.")] = 0,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Select scored decisions, rebuild their conversations by replay, write a content-addressed chat JSONL."""
    from automem.engine.dataset import Selection, build_dataset
    from automem.engine.log import local_folder, open_log
    from automem.engine.views.terminal import markup

    selection = Selection(scorer=scorer, min_score=min_score, top=top, top_episodes=top_episodes, balance=balance,
                          max_examples=max_examples, env=env, sample=sample, sample_seed=sample_seed).check()
    folder = local_folder(bus, data)
    with open_log(bus, data, create=False):
        pass  # the store must exist: a build appends to it but never creates one
    with open_log(bus, data) as log:
        result = build_dataset(log, folder, selection)
    table = Table("dataset", "examples", "episodes", "scorer", "per phase", "per game", "left out", "path",
                  title="dataset built" if result.new else "dataset built before (same selection): unchanged")
    table.columns[0].no_wrap = True
    table.columns[-1].overflow = "fold"
    left_out = {k: v for k, v in {**result.removed, **result.rejected}.items() if v}
    table.add_row(result.dataset, str(result.examples), str(result.episodes), markup(result.scorer),
                  markup(_counts(result.counts["phase"])), markup(_counts(result.counts["env"])),
                  markup(_counts(left_out)), markup(result.path))
    emit(result, json, table)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"
