"""Fixtures for the policy tests: the converted local model and a real OpenAI-compatible
server (`transformers serve`) on a free loopback port, each started once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from automem.engine.policy.convert import ensure_converted
from automem.engine.policy.local import LocalPolicy, default_local_policy

from .broker import free_port

SERVER_READY_S = 120.0


@pytest.fixture(scope="session")
def converted_model() -> Path:
    """The default cache folder: converted once (about 30 s), then reused across runs."""
    return ensure_converted()


@pytest.fixture(scope="session")
def local_policy(converted_model: Path) -> LocalPolicy:
    return default_local_policy()


@pytest.fixture(scope="session")
def uncached_policy(converted_model: Path) -> LocalPolicy:
    """The reference for the prefix cache: every call prefills its whole prompt."""
    return LocalPolicy(converted_model, "uncached", prefix_cache=False)


@pytest.fixture(scope="session")
def served_model(converted_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(model, base_url) of `transformers serve` preloaded with the converted folder."""
    pytest.importorskip("fastapi", reason="transformers serve needs the serving extra (pip install -e .[dev])")
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [
        str(Path(sys.executable).parent / "transformers"), "serve",
        "--host", "127.0.0.1", "--port", str(port), str(converted_model),
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}/health", log_path)
        yield str(converted_model), f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_healthy(server: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_READY_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"transformers serve exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"transformers serve not ready after {SERVER_READY_S:.0f} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A base URL whose server accepts connections and never answers: a hung model server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
