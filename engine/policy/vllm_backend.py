"""vLLM in-process, for GPU machines (the optional `vllm` extra).

vLLM's automatic prefix caching plays the role of LocalPolicy's KV-prefix reuse. An
adapter is registered under a name derived from its weight digest: reusing one name for
a new adapter can serve stale prefix-cache blocks computed with the old weights.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Sequence

from automem.engine.policy.adapters import adapter_digest, with_adapter
from automem.engine.policy.base import (
    BadPolicySpec,
    Completion,
    ModelError,
    Policy,
    PolicyRequest,
)
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

    def for_episode(self, seed: int) -> VLLMPolicy:
        """Each request carries its own sampling seed: no state of an episode's own."""
        return self

    @property
    def batch_key(self) -> object:
        """One engine serves the adapter and the base alike: vLLM batches requests across LoRAs."""
        return ("vllm", id(self._llm))

    def complete(self, request: PolicyRequest) -> Completion:
        answer = self.complete_batch([(self, request)])[0]
        if isinstance(answer, ModelError):
            raise answer
        return answer

    def complete_batch(self, calls: Sequence[tuple[Policy, PolicyRequest]]) -> list[Completion | ModelError]:
        """The calls as one `LLM.chat` batch per kind of ending (answer anew, or continue a
        final assistant message), each with its own sampling and adapter."""
        out: list[Completion | ModelError] = [ModelError("not answered")] * len(calls)
        for prefix in (False, True):
            members = [i for i, (_, r) in enumerate(calls) if _continues(r) == prefix]
            if members:
                for i, reply in zip(members, self._chat([calls[i] for i in members], prefix)):
                    out[i] = reply
        return out

    def _chat(self, calls: Sequence[tuple[Policy, PolicyRequest]], prefix: bool) -> list[Completion | ModelError]:
        from vllm import SamplingParams

        start = time.perf_counter()
        params = [SamplingParams(temperature=r.temperature, max_tokens=r.max_tokens, stop=list(r.stop),
                                 **({} if r.temperature == 0 else {"top_p": r.top_p, "seed": r.seed}))
                  for _, r in calls]
        loras = [getattr(p, "_lora", None) for p, _ in calls]  # a view without the adapter has none
        try:
            outputs = self._llm.chat(
                [list(r.messages) for _, r in calls], params, use_tqdm=False,
                lora_request=loras[0] if len(set(map(id, loras))) == 1 else loras,
                add_generation_prompt=not prefix, continue_final_message=prefix,
            )
        except Exception as exc:  # the port's contract: ModelError, never anything else
            return [ModelError(f"{self.name}: {type(exc).__name__}: {exc}")] * len(calls)
        latency = (time.perf_counter() - start) * 1000
        replies: list[Completion | ModelError] = []
        for (policy, request), output in zip(calls, outputs):
            answer = output.outputs[0]
            text, hit = cut_at_stop(answer.text, request.stop)
            reason = answer.stop_reason
            replies.append(Completion(
                text=text,
                stop_hit=hit or (reason if isinstance(reason, str) else None),
                model=policy.name,
                prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(answer.token_ids),
                latency_ms=latency,
            ))
        return replies


def _continues(request: PolicyRequest) -> bool:
    """Whether the request ends in an assistant message the model continues."""
    return bool(request.messages) and request.messages[-1]["role"] == "assistant"
