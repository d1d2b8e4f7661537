"""A Hugging Face causal LM in-process on the CPU, deterministic: greedy, or sampled with
the request's seed (temperature, then top-p, drawn from a generator seeded per call).

The agent calls the model up to ~10 times per game step with prompts that mostly extend
the previous one (same system prompt and memory, one more turn). Decoding is a plain
greedy loop over a KV cache that is kept between calls and cropped to the longest token
prefix the new prompt shares with what the cache holds, so a call only prefills its new
suffix.
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automem.engine.policy.adapters import with_adapter
from automem.engine.policy.base import BadPolicySpec, Completion, ModelError, PolicyRequest
from automem.engine.policy.convert import MODEL_ID, ensure_converted, is_model_folder
from automem.engine.policy.stops import cut_at_stop

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache


def cpu_threads() -> int:
    """$AUTOMEM_TORCH_THREADS (the runner sets it per worker), else half the usable cores.

    Decoding is memory-bound: on 2 cores one thread decodes as fast as two, and when
    anything else wants a core (an env, a consumer, another worker) two threads stall
    on each other and run 1.3-5x slower than one.
    """
    return int(os.environ.get("AUTOMEM_TORCH_THREADS") or max(1, len(os.sched_getaffinity(0)) // 2))


class LocalPolicy:
    """Decoding of a local model folder, optionally with a LoRA adapter merged in."""

    def __init__(
        self, model_dir: Path, name: str, adapter: Path | None = None, prefix_cache: bool = True,
        keep_adapter: bool = False,
    ) -> None:
        """`keep_adapter`: load the adapter unmerged, so `without_adapter()` can serve the base
        model from the same weights (two roles, one copy of the model)."""
        if not is_model_folder(model_dir):
            raise BadPolicySpec(
                f"{model_dir} is not a Hugging Face model folder (needs config.json and"
                " *.safetensors): fix the path in --policy local:PATH"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
            if adapter is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter)
                if not keep_adapter:
                    model = model.merge_and_unload()
        except Exception as exc:  # a broken folder or an adapter for another base model
            what = f"{model_dir} with adapter {adapter}" if adapter else str(model_dir)
            raise BadPolicySpec(f"cannot load {what}: {exc}".splitlines()[0]) from exc
        if not self._tokenizer.chat_template:
            raise BadPolicySpec(f"{model_dir} has no chat template: use an instruct (chat) model")
        self._model: Any = model.eval()
        self.name = name
        self._prefix_cache = prefix_cache
        self._context = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
        self._eos = _eos_ids(self._tokenizer.eos_token_id, model.config, model.generation_config)
        self._lock = threading.Lock()
        self._threads = cpu_threads()
        # transformers 5.x renames `past_key_values` to `cache` (the old name goes in 5.40)
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # an unmerged peft model forwards it
        self._cache_kwarg = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"
        self._cache: DynamicCache | None = None
        self._cached_ids: list[int] = []  # the tokens whose keys and values the cache holds
        self._adapter_off = False  # a view of an unmerged adapter's base model

    def without_adapter(self, name: str) -> LocalPolicy:
        """The base model as a policy of its own, sharing these weights (and the lock) but not
        the prefix cache: keys and values differ with the adapter on and off."""
        if not hasattr(self._model, "disable_adapter"):
            raise BadPolicySpec(f"{self.name} has no unmerged adapter to switch off")
        view = copy.copy(self)
        view.name, view._adapter_off, view._cache, view._cached_ids = name, True, None, []
        return view

    @property
    def cached_tokens(self) -> int:
        """How many tokens the KV cache holds: the prefix a next call can skip."""
        return len(self._cached_ids)

    def reset(self, seed: int) -> None:
        """Each request carries its own sampling seed; the prefix cache stays valid across episodes."""

    def complete(self, request: PolicyRequest) -> Completion:
        start = time.perf_counter()
        with self._lock:
            try:
                prompt = self._encode(request)
                if len(prompt) >= self._context:
                    raise ModelError(f"prompt of {len(prompt)} tokens exceeds the model's context of {self._context}")
                budget = min(request.max_tokens, self._context - len(prompt))
                text, hit, generated = self._generate(prompt, budget, request)
            except ModelError:
                raise
            except Exception as exc:  # the port's contract: ModelError, never anything else
                self._cache, self._cached_ids = None, []
                raise ModelError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=len(prompt),
            completion_tokens=generated,
            latency_ms=(time.perf_counter() - start) * 1000,
            stop_hit=hit,
        )

    def _encode(self, request: PolicyRequest) -> list[int]:
        prefix = request.messages[-1]["role"] == "assistant"
        text = self._tokenizer.apply_chat_template(
            list(request.messages), tokenize=False, add_generation_prompt=not prefix, continue_final_message=prefix
        )
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate(self, prompt: list[int], budget: int, request: PolicyRequest) -> tuple[str, str | None, int]:
        import torch

        stop = request.stop
        pending = prompt[self._reuse_prefix(prompt) :]
        out: list[int] = []
        generator = None if request.temperature == 0 else torch.Generator().manual_seed(request.seed)
        base_only = self._model.disable_adapter() if self._adapter_off else nullcontext()
        with _torch_threads(self._threads), torch.inference_mode(), base_only:
            while len(out) < budget:
                logits = self._model(
                    input_ids=torch.tensor([pending]),
                    use_cache=True,
                    logits_to_keep=1,
                    **{self._cache_kwarg: self._cache},
                ).logits
                self._cached_ids.extend(pending)
                token = next_token(logits[0, -1], request.temperature, request.top_p, generator)
                if token in self._eos:
                    break
                out.append(token)
                pending = [token]
                if stop:
                    text = self._decode(out)
                    if any(s and s in text for s in stop):
                        break
        text, hit = cut_at_stop(self._decode(out), stop)
        return text, hit, len(out)

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """Crops the cache to the prefix shared with `prompt` (leaving at least one token
        to run, for the next-token logits) and returns its length."""
        from transformers import DynamicCache

        keep = 0
        if self._prefix_cache and self._cache is not None:
            limit = min(len(prompt) - 1, len(self._cached_ids))
            while keep < limit and prompt[keep] == self._cached_ids[keep]:
                keep += 1
        if keep == 0:
            self._cache, self._cached_ids = DynamicCache(config=self._model.config), []
        elif keep < len(self._cached_ids):
            assert self._cache is not None
            self._cache.crop(keep - len(self._cached_ids))  # a negative count removes tokens
            del self._cached_ids[keep:]
        return keep

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))


def next_token(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """Greedy without a generator; else a draw from the temperature-scaled distribution cut
    to the smallest set of most likely tokens whose mass reaches top_p (nucleus sampling)."""
    import torch

    if generator is None:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        ranked, order = probs.sort(descending=True, stable=True)
        keep = ranked.cumsum(0) - ranked < top_p  # a token stays if the mass before it is short of top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], ranked[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch's thread count for one call only, so other torch users in the process keep theirs."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _eos_ids(tokenizer_eos: int | None, *configs: Any) -> set[int]:
    """Every end-of-turn id the tokenizer or configs name (some models list several)."""
    ids = {tokenizer_eos} if tokenizer_eos is not None else set()
    for value in (getattr(c, "eos_token_id", None) for c in configs):
        ids.update([value] if isinstance(value, int) else value or [])
    return ids


def default_local_policy(adapter: Path | None = None) -> LocalPolicy:
    """The embedded default, SmolLM2-135M-Instruct, converted from the bundled GGUF on first use."""
    return LocalPolicy(ensure_converted(), with_adapter(MODEL_ID, adapter), adapter)


def local_folder_policy(model_dir: Path, adapter: Path | None = None) -> LocalPolicy:
    return LocalPolicy(model_dir, with_adapter(f"local:{model_dir.resolve().name}", adapter), adapter)
