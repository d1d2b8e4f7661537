"""The publisher: memory versions loaded into a running vLLM server as they are made, and
unloaded once a promotion replaces them.

It speaks vLLM's runtime LoRA API: POST /v1/load_lora_adapter {"lora_name", "lora_path"} for
each version the trainer makes (a candidate must be served before it can be evaluated
behind `--policy openai:`, where episodes ask for it by name) and again for each promoted
one, then POST /v1/unload_lora_adapter {"lora_name"} for the version a promotion replaced.
A candidate that loses its evaluation stays listed (vLLM keeps only the adapters in use in
memory, reloading others from disk). Adapter names are the version names (one per
weights, never reused: vLLM can serve stale prefix-cache blocks under a reused name). A
redelivered event is harmless: "already loaded" and "cannot be found" answers count as
done. A status code is never taken as proof: after every load and unload the server is
asked which adapters it serves (GET /v1/models), and an adapter it reports loaded but does
not list is an error (a run that silently kept sampling the old policy is the failure this
guards against). A server that cannot be reached, refuses an adapter or does not list it
stops the consumer with one line before its position moves, so no promotion is skipped; a
candidate it refuses is a warning on stderr (the server stays as it was, and that
candidate's episodes behind `openai:` fail visibly).
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.error
import urllib.request

from automem.consumers.runtime import Batch
from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError
from automem.schemas.events import ModelVersionCreated, ModelVersionPromoted, Recorded
from automem.schemas.streams import role_stream


class Refused(UserError):
    """The server answered, and not as asked: a refused adapter, or one it does not list."""


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
            if isinstance(e, ModelVersionCreated):
                try:
                    self._load(e.name)
                    print(f"[publisher] {e.name} is served", flush=True)
                except Refused as exc:  # a candidate the server will not take must not hold up every promotion
                    print(f"[publisher] {exc}: {e.name} cannot be evaluated behind openai: until it loads",
                          file=sys.stderr, flush=True)
            if rec.stream != role_stream("memory") or not isinstance(e, ModelVersionPromoted):
                continue
            self._load(e.name)
            if e.replaces:
                self._post("unload_lora_adapter", {"lora_name": e.replaces}, done_when="cannot be found")
                if e.replaces in self.served():
                    raise UserError(f"vLLM at {self.url} answered that it unloaded {e.replaces} but still lists it "
                                    "in /v1/models")
            print(f"[publisher] {e.name} is promoted" + (f", {e.replaces} unloaded" if e.replaces else ""), flush=True)

    def _load(self, name: str) -> None:
        self._post("load_lora_adapter", {"lora_name": name, "lora_path": f"{self.root}/{name}"},
                   done_when="already been loaded")
        if name not in self.served():
            raise Refused(f"vLLM at {self.url} answered that it loaded {name} but does not list it in "
                          "/v1/models: check the server's log and that it runs with --enable-lora")

    def handle(self, records: list[Recorded], batch: Batch) -> None:
        """The server holds the effect; the store keeps only the position."""

    def served(self) -> set[str]:
        """The model and adapter names the server lists (GET /v1/models)."""
        try:
            doc = json.loads(self._call(urllib.request.Request(f"{self.url}/v1/models"), "models", ""))
            return {str(model["id"]) for model in doc["data"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"vLLM at {self.url} answered /v1/models with no model list ({exc}): is it vLLM?") from None

    def _post(self, path: str, body: dict[str, str], done_when: str) -> None:
        request = urllib.request.Request(f"{self.url}/v1/{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        self._call(request, f"{path} {body}", done_when)

    def _call(self, request: urllib.request.Request, what: str, done_when: str) -> bytes:
        """The answer's body, after up to `tries` attempts at a server that does not answer or
        answers 5xx; an error whose text holds `done_when` is a success (b"")."""
        for attempt in range(self.tries):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return bytes(response.read())
            except urllib.error.HTTPError as exc:
                text = exc.read().decode("utf-8", "replace")
                if done_when and done_when in text:
                    return b""  # the server already is where this request would take it
                if exc.code < 500:
                    first = text.splitlines()[0] if text else ""
                    raise Refused(f"vLLM at {self.url} refused {what}: {exc.code} {first}") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException):  # no answer, or a cut-off one
                pass
            time.sleep(min(2.0 ** attempt, 10.0))
        raise UserError(f"cannot reach vLLM at {self.url} ({what.split()[0]} failed {self.tries} times): start it, or "
                        "fix --vllm; the promotion is published on the next start")
