"""The `automem` command line (typer): `app` registers one module per command group, each
command parsing its options, calling one engine function and printing; `options` holds what
they share. Exit status: 0 success; 2 bad input with one line on stderr; 3 a replay that
diverged; 1 a bug.

May import: everything (it is the top layer). The engine is imported inside the commands, so
that `automem --help` and the light commands start fast, without torch, vllm or the games.
"""

from automem.engine.cli.app import app, main

__all__ = ["app", "main"]
