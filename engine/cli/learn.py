"""`automem score | eval`: loop 2's scores of memory decisions and its judgement of model versions."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, DataOpt, EnvOpt, JsonOpt, MaxStepsOpt, emit
from automem.schemas.errors import UserError

learn_app = typer.Typer()


@learn_app.command()
def score(
    episodes: Annotated[Optional[list[str]], typer.Argument(help="Episode ids (default: every episode in the store).")] = None,
    env: Annotated[Optional[str], typer.Option("--env", help="Only episodes of this game.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="A model (any --policy spec) that also grades a sample, kept apart.")] = None,
    judge_sample: Annotated[int, typer.Option("--judge-sample", min=1, max=100_000, help="Answers per episode the judge grades.")] = 20,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Score memory decisions by rule, retroactively, as their outcomes surface (loop 2, step 1)."""
    from automem.engine.scoring.selected import score_selected

    report = score_selected(bus, data, episodes or [], env, judge, judge_sample)
    if json:
        emit(report, True)
    else:
        print(f"scorer {report.scorer}: {report.scored} new scores over {report.episodes} episode(s), "
              f"{report.decisions} final; {report.pending} episode(s) still running or cut short"
              + "".join(f"; skipped {n}: {reason}" for reason, n in sorted(report.skipped.items())))
        if report.judge is not None:
            print(f"judge {report.judge}: {report.judged} grades written, {report.ungraded} answers without a grade"
                  + (f"; stopped: {report.judge_unavailable}" if report.judge_unavailable else ""))


@learn_app.command("eval")
def eval_command(
    model: Annotated[str, typer.Option("--model", help="The version to evaluate (see `automem models`).")],
    env: EnvOpt,
    seeds: Annotated[str, typer.Option("--seeds", help="Held-out seeds: A-B or A,B,C (disjoint from its dataset's).")],
    task: Annotated[Optional[str], typer.Option("--task")] = None,
    max_steps: MaxStepsOpt = 30,
    policy: Annotated[str, typer.Option("--policy", help="The base model that commits the actions.")] = "local",
    structure: Annotated[str, typer.Option("--structure")] = "auto",
    metric: Annotated[str, typer.Option("--metric", help="progression, or a proficiency figure.")] = "progression",
    promote: Annotated[bool, typer.Option("--promote", help="Promote the version if it beats the incumbent.")] = False,
    probes: Annotated[bool, typer.Option(
        "--probes", help="Also probe every episode's memory (the base model reads, every 10th step): probe_accuracy.")] = False,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """A model version against the promoted one (or the base alone) on the same held-out seeds; optionally promote it."""
    from automem.engine.evaluation.of_version import evaluate_version
    from automem.engine.probes.figure import probe_figure
    from automem.schemas.limits import parse_seeds

    if metric == "probe_accuracy" and not probes:
        raise UserError("--metric probe_accuracy needs --probes (the figure comes from asking the memory)")
    result = evaluate_version(bus, data, model, env, task, parse_seeds(seeds), max_steps, policy, structure, metric,
                              promote, probes=(lambda log: probe_figure(log, policy)) if probes else None)
    if json:
        emit(result, True)
        return
    table = Table("", "models", "mean progression", *result.candidate.figures, title=f"{result.model} on {env} seeds {seeds}")
    for label, side in (("candidate", result.candidate), ("incumbent", result.incumbent)):
        table.add_row(label, _models_cell(side.models), f"{side.mean_progression:.3f}",
                      *("n/a" if k not in side.figures else f"{side.figures[k]:.3f}" for k in result.candidate.figures))
    emit(None, False, table)
    print(f"{result.metric}: mean paired difference {result.mean_difference:+.4f}, 95% bootstrap interval "
          f"[{result.interval[0]:+.4f}, {result.interval[1]:+.4f}] over {len(result.seeds)} seeds; {result.decision}")


def _models_cell(models: dict[str, str]) -> str:
    from automem.engine.views.terminal import markup

    return markup(", ".join(f"{role}={name}" for role, name in models.items()))
