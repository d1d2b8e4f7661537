"""`automem probe`: what an episode's memory knows at its steps, against a reader without it."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import msgspec
import typer
from rich.table import Table

from automem.engine.cli.options import BusOpt, ConcurrencyOpt, DataOpt, EpisodeArg, JsonOpt, emit, err
from automem.schemas.errors import UserError
from automem.schemas.limits import MAX_SEED

probe_app = typer.Typer()


def _ints(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{option} {text!r}: give step numbers separated by commas, e.g. 9,19,29") from None


@probe_app.command()
def probe(
    episode: EpisodeArg,
    at: Annotated[Optional[str], typer.Option("--at", help="Ask as after these steps (comma-separated).")] = None,
    every: Annotated[Optional[int], typer.Option("--every", help="Ask after every K-th step (default 10).")] = None,
    reader: Annotated[Optional[str], typer.Option(
        "--reader", help="The model that answers (a policy spec; default: the episode's own action model).")] = None,
    kinds: Annotated[Optional[str], typer.Option("--kinds", help="Probe kinds, comma-separated (default: all the game has).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Which questions are picked.")] = 0,
    turns: Annotated[int, typer.Option("--turns", help="Reader turns per probe: lookups, then the answer.")] = 3,
    score: Annotated[bool, typer.Option(
        "--score", help="Also credit the writes the memory arm's lookups showed (rule 'probes', its own scorer version).")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Replay every stored probe of the episode without a model instead; exit 3 on a divergence.")] = False,
    concurrency: ConcurrencyOpt = 1, data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Memory probes: accuracy with memory vs without (the control), per kind, with 95% intervals."""
    from tqdm import tqdm

    from automem.engine.episodes.read import episode_start
    from automem.engine.log import local_folder, open_log
    from automem.engine.models.load import load_policy
    from automem.engine.probes import probe_episode
    from automem.engine.probes.credit import check_trainable, score_probes
    from automem.engine.probes.run import default_reader

    if verify:
        from automem.engine.probes.replay import replay_probes

        with open_log(bus, data, create=False) as log:
            replayed = replay_probes(log, episode)
        if json:
            emit(replayed, True)
        else:
            print(f"{episode}: {replayed.verified}/{replayed.askings} probe askings verified without a model"
                  + "".join(f"\n  DIVERGED {d}" for d in replayed.diverged))
        if replayed.diverged:
            raise typer.Exit(3)
        return
    if at is not None and every is not None:
        raise UserError("--at and --every both pick steps: give one")
    steps = _ints(at, "--at")
    chosen = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    with open_log(bus, data) as log:
        if score:
            check_trainable(log, episode)
        spec = reader or default_reader(episode_start(log, episode))
        policy = load_policy(spec, log, local_folder(bus, data))
        with tqdm(desc="probes", unit="probe", file=sys.stderr, disable=json, delay=0.5, leave=False) as bar:
            result = probe_episode(log, episode, policy, seed, chosen, steps, every, turns, concurrency,
                                   on_probe=bar.update)
        credited = score_probes(log, episode, result.run) if score else None
    emit(result if credited is None else {**msgspec.to_builtins(result), "scores": {"scorer": credited[0], "written": credited[1]}},
         json, _table(result))
    if credited is not None and not json:
        err.print(f"probe credit: scorer {credited[0]}, {credited[1]} decisions written "
                  f"(`automem dataset build --scorer {credited[0]}` uses them)", markup=False, highlight=False)
    if not json and result.skipped:
        err.print("not asked:\n" + "\n".join(f"  - {s}" for s in result.skipped), markup=False, highlight=False)
    answered = len(result.probes) - result.failed
    if result.probes and not answered:
        first = next(p.error for p in result.probes if p.error)
        raise UserError(f"every probe failed, the reader said: {first} (they are recorded; run again to retry)")


def _table(result) -> Table:
    def cell(a) -> str:
        return "n/a" if a.accuracy is None else f"{a.accuracy:.2f} [{a.low:.2f}, {a.high:.2f}]"

    table = Table("kind", "probes", "with memory", "without (control)", "gap", title=(
        f"memory probes of {result.episode} ({result.agent}), reader {result.reader}: accuracy [95% bootstrap]"))
    for f in [*result.per_kind, result.overall]:
        table.add_row(f.kind, str(max(f.memory.n, f.control.n)), cell(f.memory), cell(f.control), cell(f.gap))
    table.caption = (f"run {result.run}; {len(result.probes)} answers, {result.reused} reused, {result.failed} failed"
                     + ("" if result.agent.startswith("memory") else "; no memory: the control alone"))
    return table
