"""vLLM in-process: `pip install automem[vllm]` on a GPU machine, or the CPU build in its own
environment (`./scripts/setup --with-vllm` makes `.venv-vllm`; it pins its own torch).

vLLM's automatic prefix caching plays the role of LocalPolicy's KV-prefix reuse. An
adapter is registered under a name derived from its weight digest: reusing one name for
a new adapter can serve stale prefix-cache blocks computed with the old weights.

On a CPU the engine runs eagerly in float32 (compiling costs minutes at start and the
embedded model is too small to gain from it; float32 is what transformers runs, so greedy
answers agree token for token), and with an adapter it keeps a LoRA slot more than it
uses: vLLM's CPU LoRA kernels (0.32) index the slots' weights with -1 for a request without
an adapter, which in torch is the last slot, so in a batch mixing both roles the action
role's calls got the memory adapter whenever that adapter sat in the last slot. With a spare
slot the last one stays empty (zeros), and the roles still share one batch.
`AUTOMEM_VLLM_ENGINE_ARGS`, a JSON object of `LLM(...)` keyword arguments, overrides these
and anything else.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from automem.engine.policy.adapters import CONFIG, adapter_digest, with_adapter
from automem.engine.policy.base import (
    BadPolicySpec,
    Completion,
    ModelError,
    Policy,
    PolicyRequest,
)
from automem.engine.policy.stops import cut_at_stop

ENGINE_ARGS = "AUTOMEM_VLLM_ENGINE_ARGS"
CPU_DEFAULTS: dict[str, Any] = {"enforce_eager": True, "dtype": "float32"}
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts
INSTALL = ("./scripts/setup --with-vllm (the CPU build, in .venv-vllm) or `pip install automem[vllm]` on a GPU machine;"
           " or serve the model and use --policy openai:MODEL@URL")


class VLLMPolicy:
    """Chat completions from an in-process vLLM engine, optionally with one LoRA adapter.

    A final assistant message is continued (as `local` and `openai` do), not closed and
    answered anew."""

    def __init__(self, model: str, adapter: Path | None = None, name: str = "") -> None:
        # vLLM logs to stdout unless told otherwise, read when it is first imported: `--json` output is stdout's
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise BadPolicySpec(f"--policy vllm:... needs vLLM, which is not installed here: {INSTALL}") from exc
        self.name = name or with_adapter(f"vllm:{model}", adapter)
        self._lora: Any = None
        lora: dict[str, Any] = {}
        if adapter is not None:
            digest = adapter_digest(adapter)
            # vLLM wants a positive int id as well as a name; both follow the weights
            self._lora = LoRARequest(f"adapter-{digest[:12]}", int(digest[:7], 16) + 1, str(adapter.resolve()))
            lora = {"enable_lora": True, "max_lora_rank": lora_rank(adapter)}
        args = {**lora, **engine_args(lora=adapter is not None)}  # on a CPU it also sets the engine's environment
        try:
            self._llm: Any = LLM(model=model, **args)
        except Exception as exc:  # vLLM raises anything from ValueError to RuntimeError for a bad model
            raise BadPolicySpec(f"vLLM cannot load {model}: {_first_line(exc)}") from None

    def without_adapter(self, name: str) -> VLLMPolicy:
        """The base model from the same engine: requests without the LoRARequest."""
        view = copy.copy(self)
        view.name, view._lora = name, None
        return view

    def close(self) -> None:
        """Stops the engine's processes now, not at exit (the views of this engine with it);
        a vLLM laid out otherwise than 0.32 stops them at exit as before."""
        core = getattr(getattr(self._llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()

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


def engine_args(lora: bool) -> dict[str, Any]:
    """`LLM(...)` keyword arguments: the CPU defaults where vLLM runs on the CPU (with a spare
    LoRA slot where an adapter is served: the module's docstring says why), then
    `AUTOMEM_VLLM_ENGINE_ARGS`."""
    from vllm.platforms import current_platform

    extra = overrides(os.environ.get(ENGINE_ARGS, ""))  # a bad value is refused before the engine starts
    args: dict[str, Any] = {}
    if current_platform.is_cpu():
        args.update(CPU_DEFAULTS, **({"max_loras": 2} if lora else {}))
        for name, value in cpu_environment().items():
            os.environ.setdefault(name, value)
    return {**args, **extra}


def overrides(raw: str) -> dict[str, Any]:
    """`AUTOMEM_VLLM_ENGINE_ARGS`'s value: a JSON object, or nothing."""
    if not raw.strip():
        return {}
    try:
        extra = json.loads(raw)
    except ValueError as exc:
        raise BadPolicySpec(f"{ENGINE_ARGS} is not JSON ({exc}): give an object such as "
                            '{"max_model_len": 4096}') from None
    if not isinstance(extra, dict):
        raise BadPolicySpec(f"{ENGINE_ARGS} must be a JSON object of LLM(...) arguments, not {raw[:40]!r}")
    return extra


def cpu_environment() -> dict[str, str]:
    """What vLLM's CPU engine reads from its environment, where it is not set already: every
    core for the engine's threads (by default it keeps one for the front end, half of 2
    cores); a KV cache of a fixed size (by default it reserves 92% of the memory and refuses
    to start when other processes hold more than 8%); a step's time limit for a CPU (300 s
    was seen to run out under load with an adapter in the batch)."""
    defaults = {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, sorted(os.sched_getaffinity(0)))),
                "VLLM_CPU_KVCACHE_SPACE": "4",  # GiB: about 90k tokens of the embedded model's cache
                "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": "1800"}
    return {name: os.environ.get(name) or value for name, value in defaults.items()}


def lora_rank(adapter: Path) -> int:
    """The smallest max_lora_rank vLLM accepts that holds the adapter's rank."""
    try:
        rank = int(json.loads((adapter / CONFIG).read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadPolicySpec(f"{adapter / CONFIG} has no LoRA rank r ({exc}): pass a folder that `automem train` wrote"
                            ) from None
    fits = [r for r in LORA_RANKS if r >= rank]
    if not fits:
        raise BadPolicySpec(f"{adapter} has LoRA rank {rank}: vLLM serves ranks up to {LORA_RANKS[-1]}")
    return fits[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _continues(request: PolicyRequest) -> bool:
    """Whether the request ends in an assistant message the model continues."""
    return bool(request.messages) and request.messages[-1]["role"] == "assistant"
