"""The publisher's faults that the real vLLM cannot produce on demand: a server that answers
that it loaded an adapter and does not list it, and a server that is down. The publisher
against the real `vllm serve` is in tests/vllm/test_serve.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from automem.consumers.publisher import Publisher
from automem.consumers.runtime import position_key, run_consumer
from automem.engine.log import LmdbLog
from automem.schemas.errors import UserError
from automem.schemas.events import ModelVersionCreated

from ..support.broker import free_port
from ..support.policies import promote


class Forgetful(BaseHTTPRequestHandler):
    """Answers every load with 200 and "Success", as vLLM does, and lists only the base model."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"Success: LoRA adapter added successfully.")

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.end_headers()
        self.wfile.write(json.dumps({"object": "list", "data": [{"id": "base", "object": "model"}]}).encode())

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def forgetful() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forgetful)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_adapter_reported_loaded_but_not_listed_is_an_error(tmp_path: Path, forgetful: str) -> None:
    with LmdbLog(tmp_path / "d") as log:
        promote(log, "mem-aaa")
        publisher = Publisher(forgetful, "/adapters")
        with pytest.raises(UserError, match="loaded mem-aaa but does not list it") as raised:
            run_consumer(publisher, log, log, until_idle=True)
        assert "\n" not in str(raised.value)
        assert log.load_position(position_key(publisher, log)) == b""


@pytest.mark.slow
def test_a_server_that_is_down_stops_it_before_the_position_moves(tmp_path: Path) -> None:
    with LmdbLog(tmp_path / "d") as log:
        promote(log, "mem-aaa")
        down = Publisher(f"http://127.0.0.1:{free_port()}", "/adapters", tries=2)
        with pytest.raises(UserError, match="cannot reach vLLM"):
            run_consumer(down, log, log, until_idle=True)
        assert log.load_position(position_key(down, log)) == b""


@pytest.mark.slow
def test_a_candidate_the_server_will_not_serve_is_a_warning_and_promotions_go_on(
        tmp_path: Path, forgetful: str, capsys: pytest.CaptureFixture[str]) -> None:
    with LmdbLog(tmp_path / "d") as log:
        log.append("model/mem-bbb", 0, [ModelVersionCreated(name="mem-bbb", base="local", adapter="models/mem-bbb",
                                                             sha256="0" * 64, dataset="ds")])
        publisher = Publisher(forgetful, "/adapters")
        run_consumer(publisher, log, log, until_idle=True)
        assert log.load_position(position_key(publisher, log)) != b""
        assert "mem-bbb cannot be evaluated behind openai:" in capsys.readouterr().err

