"""What every command shares: the options typed the same way everywhere, the consoles, and
`emit`, the one way a result is printed (JSON for scripts, a table for people)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from automem.schemas.limits import MAX_CONCURRENCY, MAX_EPISODES, MAX_SEED, MAX_STEPS

err = Console(stderr=True)


class Stdout(Console):
    """A console on stdout whose reader may go away: rich would exit 1 there; `main` ends quietly."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


DataOpt = Annotated[Optional[str], typer.Option("--data", help="Embedded store folder (default ./automem-data or $AUTOMEM_DATA).")]
BusOpt = Annotated[Optional[str], typer.Option("--bus", help="lmdb://DIR (default) or kafka://HOST:PORT[,...].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
EnvOpt = Annotated[str, typer.Option("--env", help="crafter | nethack | minihack")]
EpisodeArg = Annotated[str, typer.Argument(help="Episode id (see `automem episodes`).")]
TemperatureOpt = Annotated[Optional[float], typer.Option(
    "--temperature", help="Sampling temperature, 0 (greedy, the default) to 2; each call's seed follows from the episode seed.")]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", help="Nucleus sampling mass in (0, 1] (default 1).")]
EpisodesOpt = Annotated[int, typer.Option("--episodes", min=1, max=MAX_EPISODES, help="Episodes, seeds SEED, SEED+1, ...")]
MaxStepsOpt = Annotated[int, typer.Option("--max-steps", min=1, max=MAX_STEPS)]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the first episode.")]
ScorerOpt = Annotated[Optional[str], typer.Option("--scorer", help="Scores of this scorer version (default: the latest).")]
ConcurrencyOpt = Annotated[int, typer.Option(
    "--concurrency", min=1, max=MAX_CONCURRENCY,
    help="Episodes in flight per process, their model calls batched (local: one decode batch; openai: requests in flight).")]
AgentOpt = Annotated[str, typer.Option(
    "--agent", help="memory (LOG/PLAN over memory files) | history (BALROG's naive agent) | none (the observation alone).")]
HistoryOpt = Annotated[Optional[int], typer.Option(
    "--history", help="--agent history: observation/action pairs kept in context (default 16, BALROG's).")]
ObservationOpt = Annotated[str, typer.Option(
    "--observation", help="automem (default) | balrog: the observation text BALROG's wrappers render.")]
MemoryPolicyOpt = Annotated[Optional[str], typer.Option("--memory-policy", help="A second model for LOG and PLAN lookups.")]


def emit(doc: Any, as_json: bool, table: Table | None = None) -> None:
    """Print the result: JSON for scripts, a table for people."""
    if as_json:
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    elif table is not None:
        console = Stdout()
        if not console.is_terminal:
            console = Stdout(width=160)  # piped output: do not squeeze ids into 80 columns
        console.print(table)
    else:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(doc)).decode() + "\n")
