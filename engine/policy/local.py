"""A Hugging Face causal LM in-process (the CPU, or $AUTOMEM_DEVICE), deterministic: greedy,
or sampled with the request's seed (temperature, then top-p, drawn from a generator seeded
per call).

The agent calls the model up to ~10 times per game step with prompts that mostly extend
the previous one (same system prompt and memory, one more turn). Decoding is a plain
greedy loop over a KV cache that is kept between calls and cropped to the longest token
prefix the new prompt shares with what the cache holds, so a call only prefills its new
suffix. Each episode gets its own session (`for_episode`): its own prefix cache over the
shared weights. `complete_batch` decodes pending calls of several sessions in one forward
pass per token (each prompt is still prefilled alone, from its session's cache).
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
from typing import TYPE_CHECKING, Any, Sequence

from automem.engine.policy.adapters import with_adapter
from automem.engine.policy.base import (
    BadPolicySpec,
    Completion,
    ModelError,
    Policy,
    PolicyRequest,
    answer,
)
from automem.engine.policy.convert import MODEL_ID, ensure_converted, is_model_folder
from automem.engine.policy.stops import cut_at_stop

if TYPE_CHECKING:
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer


def cpu_threads() -> int:
    """$AUTOMEM_TORCH_THREADS (the runner sets it per worker), else half the usable cores.

    Decoding is memory-bound: on 2 cores one thread decodes as fast as two, and when
    anything else wants a core (an env, a consumer, another worker) two threads stall
    on each other and run 1.3-5x slower than one.
    """
    return int(os.environ.get("AUTOMEM_TORCH_THREADS") or max(1, len(os.sched_getaffinity(0)) // 2))


def torch_device() -> str:
    """$AUTOMEM_DEVICE (e.g. `cuda`, `cuda:1`, `cpu`), else `cuda` when torch sees a GPU, else `cpu`."""
    import torch

    wanted = os.environ.get("AUTOMEM_DEVICE", "").strip()
    if not wanted:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(wanted).type
    except RuntimeError as exc:
        raise BadPolicySpec(f"AUTOMEM_DEVICE={wanted} is not a torch device: {exc}".splitlines()[0]) from exc
    if kind == "cuda" and not torch.cuda.is_available():
        raise BadPolicySpec(f"AUTOMEM_DEVICE={wanted} but torch sees no CUDA device: unset it to run on the CPU")
    return wanted


CACHES = 2  # prefix caches per session: the agent's LOG and PLAN conversations
SHARED_MIN = 64  # tokens a prompt must share with a cache to crop that cache rather than start another


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

        self._device = torch_device()
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
            # a transformers model, or peft's wrapper of one, which forwards the model's attributes at run time
            model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
            if adapter is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter)
                if not keep_adapter:
                    model = model.merge_and_unload()
            if self._device != "cpu":
                model = model.to(self._device)
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
        self._spare: list[tuple[DynamicCache, list[int]]] = []  # other prompts' caches, most recent first
        # complete_batch merges caches of plain full-attention layers (sliding windows: one by one)
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        self._mergeable = all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)
        self._adapter_off = False  # a view of an unmerged adapter's base model

    def without_adapter(self, name: str) -> LocalPolicy:
        """The base model as a policy of its own, sharing these weights (and the lock) but not
        the prefix cache: keys and values differ with the adapter on and off."""
        if not hasattr(self._model, "disable_adapter"):
            raise BadPolicySpec(f"{self.name} has no unmerged adapter to switch off")
        view = copy.copy(self)
        view.name, view._adapter_off = name, True
        view._forget(everything=True)
        return view

    def for_episode(self, seed: int) -> LocalPolicy:
        """A session for one episode: these weights, tokenizer, lock and adapter state, its own
        (empty) prefix cache. Each request carries its own sampling seed, so `seed` is unused."""
        session = copy.copy(self)
        session._forget(everything=True)
        return session

    @property
    def batch_key(self) -> object:
        """Sessions that can decode in one forward pass: one model object, one adapter state."""
        return (id(self._model), self._adapter_off)

    @property
    def cached_tokens(self) -> int:
        """How many tokens the KV cache holds: the prefix a next call can skip."""
        return len(self._cached_ids)

    def complete(self, request: PolicyRequest) -> Completion:
        start = time.perf_counter()
        with self._lock:
            try:
                prompt = self._encode(request)
                if len(prompt) >= self._context:
                    raise ModelError(f"prompt of {len(prompt)} tokens exceeds the model's context of {self._context}")
                budget = self._budget(prompt, request)
                text, hit, generated = self._generate(prompt, budget, request)
            except ModelError:
                raise
            except Exception as exc:  # the port's contract: ModelError, never anything else
                self._forget()
                raise self._error(exc) from exc
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=len(prompt),
            completion_tokens=generated,
            latency_ms=(time.perf_counter() - start) * 1000,
            stop_hit=hit,
        )

    def complete_batch(self, calls: Sequence[tuple[Policy, PolicyRequest]]) -> list[Completion | ModelError]:
        """Answers to calls of several sessions of this model (see `Batching`). Each prompt is
        prefilled alone from its session's prefix cache, exactly as `complete` does; then the
        rows decode together, one token per forward pass over a left-padded merge of their
        caches, each with its own stops, budget and sampling generator; a finished row leaves
        the batch. Afterwards each session's cache holds its prompt (the generated tokens are
        prefilled again if the next prompt contains them). A call that fails fails only its item."""
        if len(calls) == 1 or not self._mergeable:
            return [answer(*call) for call in calls]
        start = time.perf_counter()
        results: list[Completion | ModelError | None] = [None] * len(calls)
        mine = [i for i, (session, _) in enumerate(calls)
                if isinstance(session, LocalPolicy) and session.batch_key == self.batch_key]
        rows: list[_Row] = []
        with self._lock:
            try:
                base_only = self._model.disable_adapter() if self._adapter_off else nullcontext()
                with _torch_threads(self._threads), base_only:
                    for i in mine:
                        session, request = calls[i]
                        assert isinstance(session, LocalPolicy)
                        try:
                            rows.append(session._prefill(i, request))
                        except ModelError as exc:
                            results[i] = exc
                        except Exception as exc:
                            session._forget()
                            results[i] = self._error(exc)
                    try:
                        self._decode_rows([row for row in rows if not row.done])
                    except Exception as exc:  # fails the rows still decoding; finished ones stand
                        for row in rows:
                            if not row.done:
                                row.session._forget()
                                results[row.index] = self._error(exc)
                for row in [row for row in rows if results[row.index] is None]:
                    text, hit = cut_at_stop(row.session._decode(row.out), row.request.stop)
                    results[row.index] = Completion(
                        text=text, model=row.session.name, prompt_tokens=len(row.prompt),
                        completion_tokens=len(row.out), latency_ms=(time.perf_counter() - start) * 1000,
                        stop_hit=hit,
                    )
            except Exception as exc:  # the port's contract: ModelError, never anything else
                for i in mine:
                    if results[i] is None:
                        session = calls[i][0]
                        session._forget()  # type: ignore[attr-defined]
                        results[i] = self._error(exc)
        for i, call in enumerate(calls):
            if i not in mine:  # another model or adapter state: answered on its own
                results[i] = answer(*call)
        return results  # type: ignore[return-value]

    def _error(self, exc: Exception) -> ModelError:
        error = ModelError(f"{self.name}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error

    def _prefill(self, index: int, request: PolicyRequest) -> _Row:
        """A batch row: the prompt prefilled from this session's cache (as `complete` does) and
        its first token drawn; the row holds the cache's tensors as they are now."""
        import torch

        prompt = self._encode(request)
        if len(prompt) >= self._context:
            raise ModelError(f"prompt of {len(prompt)} tokens exceeds the model's context of {self._context}")
        row = _Row(self, index, request, prompt, self._budget(prompt, request))
        if row.budget <= 0:
            self._reuse_prefix(prompt)
            row.done = True
            return row
        with torch.inference_mode():
            logits = self._extend(prompt[self._reuse_prefix(prompt) :])
        assert self._cache is not None
        row.kv = [(layer.keys, layer.values) for layer in _full_attention(self._cache)]  # never changed in place
        row.accept(logits[0, -1])
        return row

    def _extend(self, pending: list[int]) -> torch.Tensor:
        """Run `pending` over this session's cache (which then holds them too); the last position's logits."""
        import torch

        logits = self._model(
            input_ids=torch.tensor([pending], device=self._device),
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kwarg: self._cache},
        ).logits
        self._cached_ids.extend(pending)
        return logits

    def _decode_rows(self, rows: list[_Row]) -> None:
        """Decodes the rows together until each is done: one forward pass per token over their
        caches merged into one, left-padded with zeros that the attention mask hides."""
        import torch
        from transformers import DynamicCache

        if not rows:
            return
        width = max(len(row.prompt) for row in rows)
        merged = []
        for layer in range(len(rows[0].kv)):
            keys, values = rows[0].kv[layer]
            shape = (len(rows), keys.shape[1], width, keys.shape[3])
            k = torch.zeros(shape, dtype=keys.dtype, device=keys.device)
            v = torch.zeros(shape, dtype=values.dtype, device=values.device)
            for b, row in enumerate(rows):
                rk, rv = row.kv[layer]
                k[b, :, width - rk.shape[2] :] = rk[0]
                v[b, :, width - rv.shape[2] :] = rv[0]
            merged.append((k, v))
        cache = DynamicCache(merged, config=self._model.config)
        del merged
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=self._device)
        for b, row in enumerate(rows):
            mask[b, width - len(row.prompt) :] = 1
            row.kv = []  # the session's own cache keeps them
        position = [len(row.prompt) for row in rows]
        with torch.inference_mode():
            while rows:
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                logits = self._model(
                    input_ids=torch.tensor([[row.out[-1]] for row in rows], device=self._device),
                    attention_mask=mask,
                    position_ids=torch.tensor([[p] for p in position], device=self._device),
                    use_cache=True,
                    logits_to_keep=1,
                    **{self._cache_kwarg: cache},
                ).logits
                for b, row in enumerate(rows):
                    row.accept(logits[b, -1])
                    position[b] += 1
                if any(row.done for row in rows):
                    keep = [b for b, row in enumerate(rows) if not row.done]
                    rows, position = [rows[b] for b in keep], [position[b] for b in keep]
                    if not rows:
                        break
                    cache.batch_select_indices(torch.tensor(keep, device=self._device))
                    mask = mask[keep]
                    lead = int(mask.argmax(dim=1).min())  # columns that are padding in every row left
                    if lead:
                        mask = mask[:, lead:]
                        for one in _full_attention(cache):
                            assert one.keys is not None and one.values is not None  # filled by the prefill
                            one.keys, one.values = one.keys[:, :, lead:], one.values[:, :, lead:]

    def _budget(self, prompt: list[int], request: PolicyRequest) -> int:
        return min(request.max_tokens, self._context - len(prompt))

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
        generator = _generator(request, self._device)
        base_only = self._model.disable_adapter() if self._adapter_off else nullcontext()
        with _torch_threads(self._threads), torch.inference_mode(), base_only:
            while len(out) < budget:
                logits = self._extend(pending)
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

    def _forget(self, everything: bool = False) -> None:
        """Drop the current cache (after a failure it may be half-written), or every cache (a new session)."""
        self._cache, self._cached_ids = None, []
        if everything:
            self._spare = []

    def _pick_cache(self, prompt: list[int]) -> int:
        """Make current the cache that shares the longest prefix with `prompt`; returns that
        prefix's length. The agent alternates two conversations (LOG and PLAN, each with its own
        system prompt): when no cache shares at least SHARED_MIN tokens, a new one starts and the
        current one is kept aside (up to CACHES per session), instead of being cropped to nothing."""
        best, pick = _shared(prompt, self._cached_ids), -1
        for i, (_, ids) in enumerate(self._spare):
            if (n := _shared(prompt, ids)) > best:
                best, pick = n, i
        if pick < 0 and (best >= SHARED_MIN or self._cache is None):
            return best
        current = [(self._cache, self._cached_ids)] if self._cache is not None else []
        self._cache, self._cached_ids = self._spare.pop(pick) if pick >= 0 else (None, [])
        self._spare = (current + self._spare)[: CACHES - 1]
        return best if pick >= 0 else 0

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """Crops the best cache (see `_pick_cache`) to the prefix shared with `prompt` (leaving
        at least one token to run, for the next-token logits) and returns its length."""
        from transformers import DynamicCache

        keep = min(self._pick_cache(prompt), len(prompt) - 1) if self._prefix_cache else 0
        if keep == 0 or self._cache is None:
            self._cache, self._cached_ids = DynamicCache(config=self._model.config), []
            keep = 0
        elif keep < len(self._cached_ids):
            self._cache.crop(keep - len(self._cached_ids))  # a negative count removes tokens
            del self._cached_ids[keep:]
        return keep

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))


class _Row:
    """One call of a batch: its session, prompt, budget, the tokens drawn so far."""

    def __init__(self, session: LocalPolicy, index: int, request: PolicyRequest, prompt: list[int], budget: int) -> None:
        self.session, self.index, self.request, self.prompt, self.budget = session, index, request, prompt, budget
        self.out: list[int] = []
        self.done = False
        self.kv: list[tuple[Any, Any]] = []  # per layer, the session cache's keys and values after prefill
        self.generator = _generator(request, session._device)

    def accept(self, logits: torch.Tensor) -> None:
        """The next token from this row's logits; done at end of turn, a stop string, or the budget."""
        request = self.request
        token = next_token(logits, request.temperature, request.top_p, self.generator)
        if token in self.session._eos:
            self.done = True
            return
        self.out.append(token)
        if len(self.out) >= self.budget:
            self.done = True
        elif request.stop:
            text = self.session._decode(self.out)
            self.done = any(s and s in text for s in request.stop)


def _full_attention(cache: DynamicCache) -> list[DynamicLayer]:
    """The layers of a cache that batches merge: plain full-attention ones only (see `_mergeable`)."""
    from transformers.cache_utils import DynamicLayer

    layers = [layer for layer in cache.layers if isinstance(layer, DynamicLayer)]
    assert len(layers) == len(cache.layers), "a batch merges caches of full-attention layers only"
    return layers


def _shared(a: list[int], b: list[int]) -> int:
    """The length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _generator(request: PolicyRequest, device: str) -> torch.Generator | None:
    """None for greedy; else a generator seeded with the request's seed, on the logits' device."""
    import torch

    return None if request.temperature == 0 else torch.Generator(device=device).manual_seed(request.seed)


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
