"""Batched decoding of the embedded model: the model's own batched `generate` (the ceiling),
LocalPolicy.complete_batch on equal prompts, and how often batched greedy answers differ
from unbatched ones. The functions print nothing; `python -m automem.bench.local_batch` prints all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from automem.engine.policy.base import Completion, ModelError, PolicyRequest
from automem.engine.policy.local import (
    LocalPolicy,
    _torch_threads,
    cpu_threads,
    torch_device,
)

FILLER = (
    "Step 12. Observation: Health 7/9, Food 6/9, Drink 5/9, Energy 8/9. You face a tree (north)."
    " Inventory: wood 3, sapling 1. Around you: water 2 west; cow 3 south, 1 east; stone 4 north."
    " Memory files: actions_log.txt (6 lines), map_notes.txt (3 lines), strategy.txt (2 lines). "
)


def _prompt_ids(tokenizer: Any, rows: int, length: int) -> list[list[int]]:
    """`rows` different prompts of exactly `length` tokens (the filler, shifted per row)."""
    ids = list(tokenizer(FILLER * (2 + length // 40), add_special_tokens=False)["input_ids"])
    return [ids[row * 7 : row * 7 + length] for row in range(rows)]


def bare_generate(model_dir: Path, batch: int, prompt_tokens: int = 361, new_tokens: int = 24) -> dict:
    """The model's own batched greedy `generate`, `new_tokens` tokens per row forced, left padding,
    float32 and LocalPolicy's thread count: the ceiling the engine's batching is compared with."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    device = torch_device()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    rows = _prompt_ids(tokenizer, batch, prompt_tokens)
    padded = tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(device)
    settings = dict(do_sample=False, min_new_tokens=new_tokens, max_new_tokens=new_tokens,
                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    with _torch_threads(cpu_threads()), torch.inference_mode():
        model.generate(**padded, **{**settings, "min_new_tokens": 2, "max_new_tokens": 2})  # warm-up
        start = time.perf_counter()
        out = model.generate(**padded, **settings)
        seconds = time.perf_counter() - start
    assert out.shape == (batch, prompt_tokens + new_tokens)
    return {"batch": batch, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "seconds": seconds,
            "tokens_per_s": batch * new_tokens / seconds}


def engine_batch(policy: LocalPolicy, batch: int, prompt_tokens: int = 361, new_tokens: int = 24,
                 cached: bool = False) -> dict:
    """complete_batch on `batch` sessions with different prompts of (about) `prompt_tokens`
    tokens (each prefilled alone, then decoded together); tokens_per_s counts the tokens the
    rows generated (a row may end early at end of turn). `cached`: each session answered its
    prompt once before, so the timed call prefills one token (the agent's prefix reuse at best)."""
    def request(content: str) -> PolicyRequest:
        return PolicyRequest(messages=({"role": "user", "content": content}, {"role": "assistant", "content": "Notes:"}),
                             max_tokens=new_tokens)

    overhead = len(policy._encode(request("")))
    texts = [policy._tokenizer.decode(ids) for ids in _prompt_ids(policy._tokenizer, batch, prompt_tokens - overhead)]
    requests = [request(text) for text in texts]
    policy.for_episode(0).complete(PolicyRequest(messages=({"role": "user", "content": "Hi"},), max_tokens=2))
    sessions = [policy.for_episode(row) for row in range(batch)]
    if cached:
        policy.complete_batch(list(zip(sessions, requests)))
    start = time.perf_counter()
    answers = policy.complete_batch(list(zip(sessions, requests)))
    seconds = time.perf_counter() - start
    done = [a for a in answers if isinstance(a, Completion)]
    generated = sum(a.completion_tokens for a in done)
    return {"batch": batch, "prompt_tokens": round(sum(a.prompt_tokens for a in done) / max(1, len(done))),
            "cached": cached, "new_tokens": generated, "seconds": seconds, "tokens_per_s": generated / seconds}


def agreement(policy: LocalPolicy, requests: Sequence[PolicyRequest], batch: int = 8) -> dict:
    """Greedy answers of complete_batch (in batches of `batch` fresh sessions) against
    `complete` on a fresh session per request: how many texts differ."""
    greedy = [r if r.temperature == 0 else _greedy(r) for r in requests]
    alone = [_text(policy.for_episode(0).complete(r)) for r in greedy]
    together: list[str] = []
    for at in range(0, len(greedy), batch):
        chunk = greedy[at : at + batch]
        together += [_text(a) for a in policy.complete_batch([(policy.for_episode(i), r) for i, r in enumerate(chunk)])]
    differing = [i for i, (a, b) in enumerate(zip(alone, together)) if a != b]
    return {"count": len(greedy), "differing": len(differing), "fraction": len(differing) / max(1, len(greedy)),
            "which": differing}


def agent_requests(policy: LocalPolicy, episodes: int = 2, steps: int = 5) -> list[PolicyRequest]:
    """The requests a real Crafter episode sends (the small structure: primes and stop strings,
    16-token answers), answered by `policy` one at a time."""
    from automem.engine.agent.episode import Episode, EpisodeSpec
    from automem.engine.envs import make_env
    from automem.engine.log.memory import MemoryLog
    from automem.engine.structure.seeds import v0
    from automem.schemas.structure import structure_version
    from automem.schemas.version import ENGINE_VERSION

    recorded: list[PolicyRequest] = []
    structure = v0("crafter", small=True)
    env = make_env("crafter")
    try:
        for seed in range(episodes):
            spec = EpisodeSpec(f"bench-batch-{seed}", env, seed, steps, structure, structure_version(structure))
            Episode(MemoryLog(), spec, _Recording(policy, recorded), None, ENGINE_VERSION).run()
    finally:
        env.close()
    return recorded


class _Recording:
    def __init__(self, inner: Any, into: list[PolicyRequest]) -> None:
        self.inner, self.into, self.name = inner, into, inner.name

    def for_episode(self, seed: int) -> _Recording:
        return _Recording(self.inner.for_episode(seed), self.into)

    def complete(self, request: PolicyRequest) -> Completion:
        self.into.append(request)
        return self.inner.complete(request)


def _greedy(request: PolicyRequest) -> PolicyRequest:
    import msgspec

    return msgspec.structs.replace(request, temperature=0.0, seed=0)


def _text(answer: Completion | ModelError) -> str:
    return answer.text if isinstance(answer, Completion) else f"error: {answer}"


if __name__ == "__main__":
    import msgspec

    from automem.engine.policy.convert import ensure_converted
    from automem.engine.policy.local import default_local_policy

    folder = ensure_converted()
    for size in (1, 4, 8):
        print("bare generate", bare_generate(folder, size))
    local = default_local_policy()
    for size in (1, 4, 8):
        print("complete_batch", engine_batch(local, size))
    for size in (1, 4, 8):
        print("complete_batch, prompts cached", engine_batch(local, size, cached=True))
    asked = agent_requests(local)
    print("agreement, agent requests", agreement(local, asked))
    longer = [msgspec.structs.replace(r, max_tokens=64) for r in asked]
    print("agreement, same requests at 64 tokens", agreement(local, longer))
