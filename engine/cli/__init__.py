"""The `automem` command line (typer): one module per command group, each command parsing its
options, calling one engine function and printing. Exit status: 0 success; 2 bad input with
one line on stderr; 3 a replay that diverged; 1 a bug.

May import: everything (it is the top layer), lazily where that keeps torch, vllm or the games
out of commands that do not need them.
"""

from automem.engine.cli.app import app, main

__all__ = ["app", "main"]
