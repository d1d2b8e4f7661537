"""GPU: the local backend's batched decoding with 1 to 64 episodes in flight.

A Qwen2-0.5B-shaped model with random weights and a byte-level tokenizer, both built
here (nothing is downloaded), so a GPU machine needs only torch, transformers and
msgspec: `python bench/gpu_rollout.py [--device cuda] [--levels 1,2,4,...]` from a
checkout prints one JSON document. C sessions (`LocalPolicy.for_episode`) each hold a
conversation shaped like an agent's: a system prompt and an observation, then per round
the previous answer and a new observation, so every call after the first reuses its
session's prefix cache; one round sends one call per session to `complete_batch`, as C
episodes in flight do. The baseline in the same process is the model's own batched
`generate` at the same batch size, prompt length and answer length: `of_bare_generate`
is how close the engine's batching gets to it. Without a GPU a tiny config runs (it checks
the path; its figures mean little).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QWEN2_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            tie_word_embeddings=True)
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% if not loop.last or "
                 "add_generation_prompt %}<|end|>{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
SYSTEM = "You play a game and keep notes in memory files. Commands: <|READ|>file<|END|> ... " * 12  # ~1 KB
OBSERVATION = "Health 7/9, Food 6/9. You face a tree (north). Inventory: wood 3. Around: water 2 west. "


def _automem() -> None:
    """Import automem from this checkout when it is not installed (the folders it maps)."""
    try:
        import automem.engine  # noqa: F401
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        shim = Path(tempfile.mkdtemp(prefix="automem-src-")) / "automem"
        shim.mkdir()
        for name in ("engine", "schemas", "bench", "consumers"):
            (shim / name).symlink_to(root / name)
        sys.path.insert(0, str(shim.parent))


def build_model(folder: Path, shape: dict[str, Any]) -> Path:
    """A random-weight Qwen2 model and a byte-level tokenizer with a chat template, saved as a folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for special in ("<|end|>", "<|pad|>"):
        vocab[special] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|end|>", pad_token="<|pad|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=1024, eos_token_id=vocab["<|end|>"], max_position_embeddings=32768, **shape)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = None  # random weights: answers run to their token budget
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def engine_level(folder: Path, concurrency: int, rounds: int, new_tokens: int) -> dict[str, Any]:
    """`rounds` rounds of one call per session through `complete_batch`; tokens per second."""
    from automem.engine.policy.base import Completion, PolicyRequest
    from automem.engine.policy.local import LocalPolicy

    policy = LocalPolicy(folder, "gpu-bench")
    sessions = [policy.for_episode(i) for i in range(concurrency)]
    talks = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{i} {OBSERVATION}"}]
             for i in range(concurrency)]
    generated = prompt = 0
    start = 0.0
    for round_ in range(rounds + 1):  # round 0 warms up (and fills each session's cache)
        if round_ == 1:
            start, generated, prompt = time.perf_counter(), 0, 0
        calls = [(s, PolicyRequest(messages=tuple(t), max_tokens=new_tokens)) for s, t in zip(sessions, talks)]
        answers = policy.complete_batch(calls) if concurrency > 1 else [policy.complete(calls[0][1])]
        for talk, answer in zip(talks, answers):
            assert isinstance(answer, Completion), answer
            generated += answer.completion_tokens
            prompt = max(prompt, answer.prompt_tokens)
            talk += [{"role": "assistant", "content": answer.text}, {"role": "user", "content": OBSERVATION}]
    _sync()
    seconds = time.perf_counter() - start
    return {"concurrency": concurrency, "rounds": rounds, "seconds": round(seconds, 3), "prompt_tokens": prompt,
            "tokens_per_s": round(generated / seconds, 1)}


def bare_level(folder: Path, batch: int, prompt_tokens: int, new_tokens: int) -> float:
    """Tokens per second of the model's own batched greedy `generate` (best of two)."""
    import torch
    from transformers import AutoModelForCausalLM

    from automem.engine.policy.local import torch_device

    device = torch_device()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    ids = torch.randint(0, 256, (batch, prompt_tokens), generator=torch.Generator().manual_seed(batch)).to(device)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(2):
            _sync()
            t = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, min_new_tokens=new_tokens,
                           max_new_tokens=new_tokens, pad_token_id=0)
            _sync()
            best = min(best, time.perf_counter() - t)
    return batch * new_tokens / best


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run(levels: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64), rounds: int = 4, new_tokens: int = 32) -> dict[str, Any]:
    import torch

    _automem()
    gpu = torch.cuda.is_available()
    folder = build_model(Path(tempfile.mkdtemp(prefix="automem-gpu-model-")), QWEN2_05B if gpu else TINY)
    out: dict[str, Any] = {"name": "gpu_rollout", "device": torch.cuda.get_device_name() if gpu else "cpu",
                           "model": "qwen2-0.5b shape, random weights" if gpu else "tiny (no GPU: figures mean little)",
                           "new_tokens": new_tokens, "levels": []}
    if not gpu:
        levels = tuple(c for c in levels if c <= 4)
    for concurrency in levels:
        level = engine_level(folder, concurrency, rounds, new_tokens)
        bare = bare_level(folder, concurrency, level["prompt_tokens"], new_tokens)
        level["bare_generate_tokens_per_s"] = round(bare, 1)
        level["of_bare_generate"] = round(level["tokens_per_s"] / bare, 3)
        out["levels"].append(level)
        print(json.dumps(level), file=sys.stderr, flush=True)  # progress: a level at a time
    first = out["levels"][0]["tokens_per_s"]
    for level in out["levels"]:
        level["ratio_to_1"] = round(level["tokens_per_s"] / first, 2)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,2,4,8,16,32,64")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--device", default=None, help="sets $AUTOMEM_DEVICE (default: cuda when available)")
    args = parser.parse_args()
    if args.device:
        import os

        os.environ["AUTOMEM_DEVICE"] = args.device
    print(json.dumps(run(tuple(int(c) for c in args.levels.split(",")), args.rounds)))
