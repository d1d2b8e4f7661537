"""The publisher against a stand-in for vLLM's runtime LoRA API (vLLM needs a GPU): the
requests it sends, in order, idempotent on redelivery, and a server that is down."""

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
from automem.schemas.events import ModelVersionPromoted
from automem.schemas.streams import role_stream

from ..support.broker import free_port


class FakeVLLM(BaseHTTPRequestHandler):
    """vLLM's documented answers: 200 on success, 400 "has already been loaded", 404 "cannot be found"."""

    loaded: set[str] = set()
    seen: list[tuple[str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body))
        name = body.get("lora_name", "")
        if self.path == "/v1/load_lora_adapter":
            code, text = ((400, f"The lora adapter '{name}' has already been loaded.") if name in self.loaded
                          else (200, f"Success: LoRA adapter '{name}' added successfully."))
            self.loaded.add(name)
        elif self.path == "/v1/unload_lora_adapter":
            code, text = ((200, f"Success: LoRA adapter '{name}' removed successfully.") if name in self.loaded
                          else (404, f"The lora adapter '{name}' cannot be found."))
            self.loaded.discard(name)
        else:
            code, text = 404, "Not Found"
        self.send_response(code)
        self.end_headers()
        self.wfile.write(json.dumps({"message": text}).encode() if code >= 400 else text.encode())

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def vllm() -> Iterator[str]:
    FakeVLLM.loaded, FakeVLLM.seen = set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _promote(log: LmdbLog, name: str, replaces: str = "") -> None:
    stream = role_stream("memory")
    log.append(stream, log.head(stream), [ModelVersionPromoted(name=name, role="memory", replaces=replaces)])


@pytest.mark.slow
def test_promotions_are_loaded_and_superseded_ones_unloaded(tmp_path: Path, vllm: str) -> None:
    with LmdbLog(tmp_path / "d") as log:
        _promote(log, "mem-aaa")
        _promote(log, "mem-bbb", replaces="mem-aaa")
        publisher = Publisher(vllm, "/adapters")
        run_consumer(publisher, log, log, until_idle=True)
        assert log.load_position(position_key(publisher, log)) != b""
        assert FakeVLLM.seen == [
            ("/v1/load_lora_adapter", {"lora_name": "mem-aaa", "lora_path": "/adapters/mem-aaa"}),
            ("/v1/load_lora_adapter", {"lora_name": "mem-bbb", "lora_path": "/adapters/mem-bbb"}),
            ("/v1/unload_lora_adapter", {"lora_name": "mem-aaa"}),
        ]
        assert FakeVLLM.loaded == {"mem-bbb"}
        with LmdbLog(tmp_path / "fresh") as fresh:  # a publisher with no position: the history again, harmlessly
            run_consumer(Publisher(vllm, "/adapters"), log, fresh, until_idle=True)
        assert FakeVLLM.loaded == {"mem-bbb"} and len(FakeVLLM.seen) == 6


@pytest.mark.slow
def test_a_server_that_is_down_stops_it_before_the_position_moves(tmp_path: Path) -> None:
    with LmdbLog(tmp_path / "d") as log:
        _promote(log, "mem-aaa")
        down = Publisher(f"http://127.0.0.1:{free_port()}", "/adapters", tries=2)
        with pytest.raises(UserError, match="cannot reach vLLM"):
            run_consumer(down, log, log, until_idle=True)
        assert log.load_position(position_key(down, log)) == b""
