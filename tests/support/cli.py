"""The automem CLI run as a user runs it: a subprocess, exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

AUTOMEM = [sys.executable, "-c", "from automem.engine.cli import main; main()"]


def automem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AUTOMEM_DATA"}
    return subprocess.run([*AUTOMEM, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0]
