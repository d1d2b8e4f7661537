"""vLLM in-process, for GPU machines (the optional `vllm` extra).

vLLM's automatic prefix caching plays the role of LocalPolicy's KV-prefix reuse. An
adapter is registered under a name derived from its weight digest: reusing one name for
a new adapter can serve stale prefix-cache blocks computed with the old weights.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from automem.engine.policy.adapters import adapter_digest, with_adapter
from automem.engine.policy.base import BadPolicySpec, Completion, ModelError, PolicyRequest
from automem.engine.policy.stops import cut_at_stop


class VLLMPolicy:
    """Chat completions from an in-process vLLM engine, optionally with one LoRA adapter.

    A final assistant message is continued (as `local` and `openai` do), not closed and
    answered anew."""

    def __init__(self, model: str, adapter: Path | None = None, max_lora_rank: int = 64) -> None:
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise BadPolicySpec(
                "--policy vllm:... needs vLLM: `pip install automem[vllm]` on a GPU machine,"
                " or serve the model and use --policy openai:MODEL@URL"
            ) from exc
        self.name = with_adapter(f"vllm:{model}", adapter)
        self._lora: Any = None
        if adapter is not None:
            digest = adapter_digest(adapter)
            # vLLM wants a positive int id as well as a name; both follow the weights
            self._lora = LoRARequest(f"adapter-{digest[:12]}", int(digest[:7], 16) + 1, str(adapter))
        self._llm: Any = LLM(model=model, enable_lora=adapter is not None, max_lora_rank=max_lora_rank)

    def without_adapter(self, name: str) -> VLLMPolicy:
        """The base model from the same engine: requests without the LoRARequest."""
        view = copy.copy(self)
        view.name, view._lora = name, None
        return view

    def reset(self, seed: int) -> None:
        """Each request carries its own sampling seed: nothing to reseed."""

    def complete(self, request: PolicyRequest) -> Completion:
        from vllm import SamplingParams

        start = time.perf_counter()
        params = SamplingParams(temperature=request.temperature, max_tokens=request.max_tokens,
                                stop=list(request.stop),
                                **({} if request.temperature == 0 else {"top_p": request.top_p, "seed": request.seed}))
        prefix = bool(request.messages) and request.messages[-1]["role"] == "assistant"
        try:
            (output,) = self._llm.chat(
                list(request.messages), params, use_tqdm=False, lora_request=self._lora,
                add_generation_prompt=not prefix, continue_final_message=prefix,
            )
            answer = output.outputs[0]
        except Exception as exc:  # the port's contract: ModelError, never anything else
            raise ModelError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        text, hit = cut_at_stop(answer.text, request.stop)
        reason = answer.stop_reason
        return Completion(
            text=text,
            stop_hit=hit or (reason if isinstance(reason, str) else None),
            model=self.name,
            prompt_tokens=len(output.prompt_token_ids or ()),
            completion_tokens=len(answer.token_ids),
            latency_ms=(time.perf_counter() - start) * 1000,
        )
