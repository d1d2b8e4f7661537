"""The publisher: every promoted memory version loaded into a running vLLM server.

It follows the memory role's promotion history and speaks vLLM's runtime LoRA API: POST
/v1/load_lora_adapter {"lora_name", "lora_path"} for each promoted version, then POST
/v1/unload_lora_adapter {"lora_name"} for the version it replaced. Adapter names are the
version names (one per weights, never reused: vLLM can serve stale prefix-cache blocks
under a reused name). A redelivered promotion is harmless: "already loaded" and "cannot
be found" answers count as done. A server that cannot be reached stops the consumer with
one line before its position moves, so no promotion is skipped.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from automem.consumers.runtime import Batch
from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError
from automem.schemas.events import ModelVersionPromoted, Recorded
from automem.schemas.streams import role_stream


class Publisher:
    name = "publisher"
    families = ("model",)

    def __init__(self, vllm: str, adapter_root: str, tries: int = 5, timeout: float = 30.0) -> None:
        """`adapter_root`: where the vLLM host sees the adapters, one folder per version name."""
        self.url, self.root = vllm.rstrip("/").removesuffix("/v1"), adapter_root.rstrip("/")
        self.tries, self.timeout = tries, timeout

    def emit(self, records: list[Recorded], log: EventLog) -> None:
        for rec in records:
            e = rec.event
            if rec.stream != role_stream("memory") or not isinstance(e, ModelVersionPromoted):
                continue
            self._post("load_lora_adapter", {"lora_name": e.name, "lora_path": f"{self.root}/{e.name}"},
                       done_when="already been loaded")
            if e.replaces:
                self._post("unload_lora_adapter", {"lora_name": e.replaces}, done_when="cannot be found")
            print(f"[publisher] {e.name} is served" + (f", {e.replaces} unloaded" if e.replaces else ""), flush=True)

    def handle(self, records: list[Recorded], batch: Batch) -> None:
        """The server holds the effect; the store keeps only the position."""

    def _post(self, path: str, body: dict[str, str], done_when: str) -> None:
        request = urllib.request.Request(f"{self.url}/v1/{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        for attempt in range(self.tries):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout):
                    return
            except urllib.error.HTTPError as exc:
                text = exc.read().decode("utf-8", "replace")
                if done_when in text:
                    return  # the server already is where this request would take it
                if exc.code < 500:
                    raise UserError(f"vLLM at {self.url} refused {path} {body}: {exc.code} {text.splitlines()[0] if text else ''}"
                                    ) from None
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(min(2.0 ** attempt, 10.0))
        raise UserError(f"cannot reach vLLM at {self.url} ({path} failed {self.tries} times): start it, or fix --vllm; "
                        "the promotion is published on the next start")
