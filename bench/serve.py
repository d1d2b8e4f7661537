"""`transformers serve` on a free loopback port: the real OpenAI-compatible server that the
tests and the rollout benchmark talk to."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

READY_S = 120.0


class ServerFailed(RuntimeError):
    """The server exited or never became healthy; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(model_dir: Path, log_path: Path, continuous_batching: bool = False) -> Iterator[str]:
    """The base URL (…/v1) of `transformers serve` preloaded with `model_dir`, stopped after."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "transformers"), "serve", "--host", "127.0.0.1", "--port", str(port),
               *(["--continuous-batching"] if continuous_batching else []), str(model_dir)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}/health", log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_healthy(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerFailed(f"transformers serve exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise ServerFailed(f"transformers serve not ready after {READY_S:.0f} s:\n{log_path.read_text()[-3000:]}")
