"""`automem loop run|status|report`: both learning loops end to end, resumable from the log. Thin."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, ConcurrencyOpt, DataOpt, JsonOpt, emit

if TYPE_CHECKING:
    from automem.engine.loop.table import Row

loop_app = typer.Typer(help="Both learning loops end to end: run (or resume) a loop, see its table or its page.",
                       no_args_is_help=True)
IdOpt = Annotated[Optional[str], typer.Option("--id", help="The loop's name (default: derived from its settings).")]


@loop_app.command("run")
def run(
    env: Annotated[str, typer.Option("--env", help="crafter | nethack | minihack")] = "crafter",
    task: Annotated[Optional[str], typer.Option("--task")] = None,
    iterations: Annotated[int, typer.Option("--iterations", min=1, max=1000, help="Iterations in all (more resumes a finished loop).")] = 1,
    episodes: Annotated[int, typer.Option("--episodes", min=1, max=1000, help="Seeds per set when a set is not given.")] = 3,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, max=10_000_000)] = 30,
    train_seeds: Annotated[Optional[str], typer.Option("--train-seeds", help="A-B or A,B,C (default 1000, 1001, ...).")] = None,
    select_seeds: Annotated[Optional[str], typer.Option("--select-seeds", help="Decide acceptance and promotion (default 2000, ...).")] = None,
    heldout_seeds: Annotated[Optional[str], typer.Option("--heldout-seeds", help="Reported only (default 3000, ...).")] = None,
    loops: Annotated[str, typer.Option("--loops", help="1 (structure), 2 (memory model) or 1,2.")] = "1,2",
    policy: Annotated[str, typer.Option("--policy", help="The agent (any --policy spec).")] = "local",
    structure: Annotated[str, typer.Option("--structure", help="Where the first iteration starts: auto, v0, v0-small, v0-small-lookup, a version.")] = "auto",
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", help="Loop 1's reviewer (default: the --policy).")] = None,
    reviewer_turns: Annotated[int, typer.Option("--reviewer-turns", min=1, max=50)] = 6,
    reviewer_tokens: Annotated[int, typer.Option("--reviewer-tokens", min=16, max=65_536)] = 4096,
    base: Annotated[str, typer.Option("--base", help="The base model trained: local | local:PATH | PATH.")] = "local",
    train_steps: Annotated[Optional[int], typer.Option("--train-steps", min=1, max=10_000_000, help="Optimizer steps per training.")] = None,
    config: Annotated[Optional[str], typer.Option("--config", help="TOML or JSON trainer settings (its contents are part of the loop).")] = None,
    device: Annotated[str, typer.Option("--device", help="Training device: auto | cpu | cuda")] = "auto",
    compare: Annotated[Optional[str], typer.Option("--compare", help="A baseline agent played on the held-out seeds beside the loop: history-16 | none (maybe :balrog).")] = None,
    probes: Annotated[bool, typer.Option("--probes", help="Probe the memory of every evaluation episode (the --policy reads): probe_accuracy among the figures.")] = False,
    temperature: Annotated[float, typer.Option("--temperature", help="The training rollouts' sampling temperature (0: greedy); evaluation is greedy.")] = 1.0,
    top_p: Annotated[float, typer.Option("--top-p", help="The training rollouts' nucleus (1 keeps every token).")] = 1.0,
    fresh_seeds: Annotated[bool, typer.Option("--fresh-seeds/--same-seeds", help="New training seeds every iteration after the first (derived from the loop and the iteration), or the same ones.")] = True,
    min_examples: Annotated[int, typer.Option("--min-examples", min=0, max=10_000_000, help="Loop 2 plays more training episodes (new seeds) until its selection keeps this many decisions (0: one round).")] = 300,
    rollout_budget: Annotated[Optional[int], typer.Option("--rollout-budget", min=1, max=100_000, help="...or until this many episodes are played in an iteration (default: 4 rounds of the training seeds).")] = None,
    allow_small: Annotated[bool, typer.Option("--allow-small", help="Train on a dataset under --min-examples when the budget ran out first.")] = False,
    concurrency: ConcurrencyOpt = 1,
    wait: Annotated[float, typer.Option("--wait", min=1, max=1e7, help="With a kafka:// bus: seconds to wait for the workers, scorer or trainer at each stage.")] = 3600,
    loop: IdOpt = None, data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Rollouts, scores, loop 1, dataset, training, evaluation, promotion, held-out report; every stage an event.

    With a kafka:// bus the loop is a driver: `automem worker`s play its episodes, `automem consume
    scorer` and `automem consume trainer` score and train; it runs the other stages itself."""
    from automem.engine.log import local_folder, open_log, open_store
    from automem.engine.loop import Options, run_loop, settings_from_options
    from automem.engine.policy.spec import make_policy

    start = settings_from_options(Options(
        env=env, task=task, episodes=episodes, max_steps=max_steps, train_seeds=train_seeds, select_seeds=select_seeds,
        heldout_seeds=heldout_seeds, loops=loops, policy=policy, structure=structure, reviewer=reviewer,
        reviewer_turns=reviewer_turns, reviewer_tokens=reviewer_tokens, base=base, train_steps=train_steps,
        config=config, device=device, wait=wait, loop=loop, bus=bus, compare=compare, probes=probes,
        temperature=temperature, top_p=top_p, fresh_seeds=fresh_seeds, min_examples=min_examples,
        rollout_budget=rollout_budget, allow_small=allow_small))
    name, settings, services = start.loop, start.settings, start.services
    header = [f"loop {name}" + (f" (driver: workers, scorer and trainer on {bus})" if services else "")]

    def say(line: str) -> None:
        """Progress on stderr, the loop's name first: a start refused before any work says one line only."""
        while header:
            print(header.pop(), file=sys.stderr)
        print(line, file=sys.stderr)

    with open_log(bus, data) as log, open_store(bus, data) as store:
        result = run_loop(log, local_folder(bus, data), store, settings, name, iterations,
                          lambda: make_policy(settings.reviewer), say, concurrency=concurrency, services=services)
    if not result.ran:
        say(f"loop {name}: {iterations} iteration(s) done already, nothing to do")
    emit({"loop": result.loop, "ran": result.ran, "iterations": result.iterations}, json,
         _table(result.loop, result.iterations))


@loop_app.command("status")
def status(loop: IdOpt = None, data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """A loop's table per iteration (the loop started last, without --id)."""
    from automem.engine.log import open_log
    from automem.engine.loop import status as loop_status

    with open_log(bus, data, create=False) as log:
        doc = loop_status(log, loop)
    emit(doc, json, _table(doc.loop, doc.iterations))


def _span(figures: dict[str, float], prefix: str, mean: str) -> str:
    if f"{prefix}.{mean}" not in figures:
        return "-"
    return (f"{figures[f'{prefix}.{mean}']:.3f} [{figures.get(f'{prefix}.low', 0.0):+.3f}, "
            f"{figures.get(f'{prefix}.high', 0.0):+.3f}]")


def _table(name: str, rows: list[Row]) -> Table:
    from automem.engine.views.terminal import markup

    yes = {True: "yes", False: "no", None: "-"}
    table = Table("#", "status", "structure", "accepted", "model", "promoted",
                  "select: loop 1 (cand, diff [95%])", "select: loop 2 (cand, diff [95%])",
                  "held-out progression [95%]", title=f"loop {name}")
    if rows and rows[0].baseline:  # iteration 0: where the loop started, on the held-out seeds
        table.add_row("0", "baseline", "", "", "", "", "-", "-", _span(rows[0].baseline, "heldout", "mean_progression"))
    if rows and rows[0].compare:  # the comparison arm: a baseline agent, no memory, on the same seeds
        table.add_row("0", f"compare: {rows[0].compare_agent}", "(no memory)", "", "base", "", "-", "-",
                      _span(rows[0].compare, "heldout", "mean_progression"))
    for r in rows:
        l1, sel = r.loop1, r.selection
        loop1 = f"{l1['select.candidate']:.3f}, {_span(l1, 'select', 'difference')}" if "select.candidate" in l1 else "-"
        loop2 = f"{sel['select.candidate']:.3f}, {_span(sel, 'select', 'difference')}" if "select.candidate" in sel else "-"
        accepted = yes[r.accepted] + (" (invalid proposal)" if r.proposal == "invalid" else "")
        table.add_row(str(r.iteration), markup(r.status), markup(r.structure), accepted,
                      markup(r.model or "base"), yes[r.promoted], loop1, loop2,
                      _span(r.heldout, "heldout", "mean_progression"))
    return table


@loop_app.command("report")
def report(
    output: Annotated[str, typer.Option("-o", "--output", help="The HTML file to write (its folder must exist).")],
    loop: IdOpt = None, data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """One self-contained HTML page of a loop: learning curves, a table per iteration, its best and
    worst held-out episodes (their reports written in FILE-episodes/ beside it)."""
    from automem.engine.log import open_log
    from automem.engine.loop.report import write_report
    from automem.engine.views.outputs import output_file, store_folders

    path = output_file(output, store_folders(bus, data), "loop.html")
    with open_log(bus, data, create=False) as log:
        name, episodes = write_report(log, loop, path)
    size = path.stat().st_size
    if json:
        emit({"loop": name, "path": str(path), "bytes": size, "episodes": episodes}, True)
    else:
        print(f"{path} ({size / 1024:.0f} KiB, {len(episodes)} episode report(s) in {path.stem}-episodes/)")
