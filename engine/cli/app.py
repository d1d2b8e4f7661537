"""The `automem` app: every command group registered the one way, and `main`, which turns
what a command raises into an exit status.

Exit status: 0 success; 2 bad input with one line on stderr; 3 a replay that diverged;
1 a bug. `--json` prints one JSON document on stdout as the last thing printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from automem.engine.cli.bench import bench_app
from automem.engine.cli.dataset import dataset_app
from automem.engine.cli.episodes import episodes_app
from automem.engine.cli.evolve import evolve_app
from automem.engine.cli.learn import learn_app
from automem.engine.cli.loop import loop_app
from automem.engine.cli.options import err
from automem.engine.cli.play import play_app
from automem.engine.cli.probe import probe_app
from automem.engine.cli.protocol import protocol_app
from automem.engine.cli.rollouts import rollouts_app
from automem.engine.cli.services import services_app
from automem.engine.cli.store import store_app
from automem.engine.cli.structure import structure_app
from automem.engine.cli.train import train_app
from automem.schemas.errors import UserError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="automem: LLM agents that learn to manage their own memory, on an event-sourced log.",
)

# (name, group): a named group is `automem NAME SUBCOMMAND`; an unnamed one adds its commands at
# the top level. `automem --help` lists them in this order.
GROUPS: tuple[tuple[str | None, typer.Typer], ...] = (
    (None, play_app), (None, episodes_app), (None, rollouts_app), (None, services_app), (None, learn_app),
    (None, bench_app), (None, protocol_app), (None, probe_app), (None, evolve_app), (None, train_app),
    ("store", store_app), ("dataset", dataset_app), ("structure", structure_app), ("loop", loop_app),
)
for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)


def _print_version(value: bool) -> None:
    if value:
        from automem.schemas.version import ENGINE_VERSION

        print(f"automem {ENGINE_VERSION}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """automem: LLM agents that learn to manage their own memory, on an event-sourced log."""


def _fail(message: str, status: int = 2) -> NoReturn:
    from automem.engine.views.terminal import safe

    err.print(f"automem: error: {safe(' '.join(message.split()))}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(status)


def _usage_error() -> Any:
    """click's exception base as typer uses it (recent typer carries its own copy of click,
    so no import names its type: Any)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: every user error, usage errors included, becomes one line on
    stderr and exit status 2; a reader that closes the pipe early ends the command quietly."""
    args = sys.argv[1:] if argv is None else argv
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            _fail(f"argument {arg.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8: "
                  "give episode ids, paths and specs as UTF-8 text")
    try:
        status = app(args, prog_name="automem", standalone_mode=False)
        sys.stdout.flush()
    except UserError as exc:
        _fail(str(exc))
    except _usage_error() as exc:
        if not exc.format_message():  # `automem` alone: the help it printed is the answer
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)  # the command that refused, by its whole path: `automem loop run`
        hint = f" (see `{ctx.command_path if ctx is not None else 'automem'} --help`)"
        _fail(exc.format_message() + hint, exc.exit_code)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        sys.exit(0)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:  # a write no caller wrapped: still one line, when it is about the place written
        from automem.engine.files import WRITE_SIDE, problem

        if exc.errno not in WRITE_SIDE:
            raise
        if exc.filename is None:  # a write to standard output or to a file given by its descriptor
            _fail(f"cannot write the output: {exc.strerror}")
        _fail(str(problem(exc, Path(exc.filename), "a file")))
    sys.exit(status if isinstance(status, int) else 0)
