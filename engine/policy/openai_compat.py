"""Any OpenAI-compatible chat server: vLLM, `transformers serve`, a hosted API.

The seed code waited forever on a stuck server; here every call has a timeout and a
bounded number of tries (the client's own retry with exponential backoff, which covers
connection errors, timeouts, 408/409/429 and 5xx), so a call ends within about
`tries * timeout` plus a few seconds of backoff.

Several episodes' calls go to the server together, each on a thread of its own with its
own timeout and retries: a server batches what it has in flight (vLLM's continuous
batching), so keeping many requests open is what makes it efficient.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlsplit

from automem.engine.policy.base import (
    BadPolicySpec,
    Completion,
    ModelError,
    Policy,
    PolicyRequest,
    answer,
)
from automem.engine.policy.stops import cut_at_stop
from automem.schemas.limits import MAX_CONCURRENCY

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion

DUMMY_KEY = "automem-no-key"  # local servers ignore the key, but the client insists on one


def normalize_base_url(url: str) -> str:
    """`http://host:port` means the usual `/v1` root; an explicit path is kept."""
    url = url.rstrip("/")
    return url + "/v1" if urlsplit(url).path == "" else url


class OpenAIPolicy:
    """Chat completions from `model` at `base_url`, with the request's sampling and seed."""

    def __init__(self, model: str, base_url: str, timeout: float = 120.0, tries: int = 3) -> None:
        from openai import OpenAI

        self.name = f"openai:{model}"
        self.model = model
        self.base_url = normalize_base_url(base_url)
        self._client = OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get("OPENAI_API_KEY") or DUMMY_KEY,
            timeout=timeout,
            max_retries=tries - 1,
        )
        self._pool: ThreadPoolExecutor | None = None  # the threads of requests in flight, made on first need

    def for_episode(self, seed: int) -> OpenAIPolicy:
        """Each request carries its own sampling seed: no state of an episode's own."""
        return self

    @property
    def batch_key(self) -> object:
        return ("openai", id(self))

    def complete_batch(self, calls: Sequence[tuple[Policy, PolicyRequest]]) -> list[Completion | ModelError]:
        """All the calls in flight at once; one failing (after its own retries) fails only itself."""
        if self._pool is None:  # it starts a thread only when no idle one can take a call
            self._pool = ThreadPoolExecutor(MAX_CONCURRENCY, thread_name_prefix="automem-openai")
        return list(self._pool.map(lambda call: answer(self, call[1]), calls))

    def check_reachable(self, timeout: float = 5.0) -> None:
        """Fail fast at startup, before any episode event is written. Any HTTP answer,
        even an error status, proves the server is up; only no answer at all fails."""
        import openai

        try:
            self._client.with_options(timeout=timeout, max_retries=0).models.list()
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise BadPolicySpec(
                f"cannot reach model server at {self.base_url}: start it or fix --policy"
            ) from exc
        except openai.APIStatusError:
            pass

    def complete(self, request: PolicyRequest) -> Completion:
        start = time.perf_counter()
        try:
            options: dict[str, Any] = {}  # sent only where they apply
            if request.temperature != 0:
                # a per-request seed, for servers that honour one (vLLM does): a sampled episode reproduces
                options.update(top_p=request.top_p, seed=request.seed)
            if request.stop:
                options["stop"] = list(request.stop)
            if request.messages and request.messages[-1]["role"] == "assistant":
                # continue a final assistant message: vLLM's options (transformers serve answers 422)
                options["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
            response: ChatCompletion = self._client.chat.completions.create(  # not streamed
                model=self.model,
                messages=list(request.messages),  # type: ignore[arg-type]
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                **options,
            )
            text = _first_text(response)
            choice = response.choices[0]
        except ModelError:
            raise
        except Exception as exc:  # the port's contract: ModelError, never anything else
            raise ModelError(f"{self.name} at {self.base_url}: {type(exc).__name__}: {exc}") from exc
        usage = response.usage
        text, hit = cut_at_stop(text, request.stop)  # transformers serve keeps the stop string
        reason = getattr(choice, "stop_reason", None)  # vLLM names the stop string it matched
        hit = hit or (reason if isinstance(reason, str) and reason in request.stop else None)
        return Completion(
            text=text,
            stop_hit=hit,
            model=self.name,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=(time.perf_counter() - start) * 1000,
        )


def _first_text(response: Any) -> str:
    if not response.choices:
        raise ModelError("the server answered with no choices")
    return response.choices[0].message.content or ""
