"""LoRA training speed and peak memory, through transformers' Trainer as `automem train` drives it.

Models are built from standard configs with random weights (Qwen2-0.5B and Qwen2-7B
shapes; nothing is downloaded), LoRA as the trainer's defaults for their size (0.5B:
rank 8 on q/k/v/o; 7B: rank 64 on every linear layer, gradient checkpointing), bf16 on a
GPU. Every token carries loss. The baseline, in the same process on the same batches, is
a forward pass alone (no gradients): `ratio` = training tokens/s over forward tokens/s (a
training step costs about three forwards, more with checkpointing).

On a machine without a GPU only a tiny config runs (it checks the path, its figures
mean little) and the output says which sizes were skipped. The file needs nothing but
torch, transformers and peft: `python bench/train.py` runs it anywhere, `automem bench
train --json` here.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

# Qwen2 shapes (config.json of Qwen/Qwen2-0.5B and Qwen/Qwen2-7B), then the trainer's LoRA defaults for the size
SIZES: dict[str, dict[str, Any]] = {
    "0.5b": {"model": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                           num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
             "lora": dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
             "batch": 8, "length": 1024, "checkpointing": False},
    "7b": {"model": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
           "lora": dict(r=64, lora_alpha=128, target_modules="all-linear"),
           "batch": 2, "length": 2048, "checkpointing": True},
}
TINY: dict[str, Any] = {
    "model": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
    "lora": dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    "batch": 4, "length": 128, "checkpointing": False,
}
WARMUP, STEPS = 2, 8  # optimizer steps untimed, then timed


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's, KiB on Linux


def measure(size: dict[str, Any], device: str) -> dict[str, Any]:
    """LoRA steps through Trainer, then as many forward passes, on the same random batches."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        PrinterCallback,
        ProgressCallback,
        Qwen2Config,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    torch.manual_seed(0)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    with torch.device(device):  # random weights made where they are used: a 7B init on the CPU takes minutes
        model = AutoModelForCausalLM.from_config(Qwen2Config(**size["model"]), dtype=dtype)
    parameters = sum(p.numel() for p in model.parameters())
    if size["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.05, **size["lora"]))
    batch, length = size["batch"], size["length"]
    ids = torch.randint(0, size["model"]["vocab_size"], ((WARMUP + STEPS) * batch, length))
    rows = [{"input_ids": row, "labels": row} for row in ids]

    class StepClock(TrainerCallback):
        start = 0.0
        seconds = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == WARMUP:
                _sync(device)
                self.start = time.perf_counter()

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            _sync(device)
            self.seconds = time.perf_counter() - self.start

    clock = StepClock()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model=model, train_dataset=rows, callbacks=[clock], args=TrainingArguments(
        output_dir="/tmp/automem-bench-train", per_device_train_batch_size=batch, max_steps=WARMUP + STEPS,
        learning_rate=1e-4, lr_scheduler_type="cosine", warmup_steps=0.05, bf16=bf16, use_cpu=device == "cpu",
        report_to="none", save_strategy="no", logging_steps=10**9, remove_unused_columns=False,
        disable_tqdm=True, dataloader_num_workers=0))
    trainer.remove_callback(PrinterCallback)  # stdout is for the JSON
    trainer.remove_callback(ProgressCallback)
    trainer.train()
    train_peak = _peak_mb(device)
    model.eval()
    with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=bf16):
        forward = ids[:batch].to(device)
        model(input_ids=forward)
        _sync(device)
        start = time.perf_counter()
        for _ in range(STEPS):
            model(input_ids=forward)
        _sync(device)
        forward_s = time.perf_counter() - start
    tokens = STEPS * batch * length
    train_rate, forward_rate = tokens / clock.seconds, tokens / forward_s
    del trainer, model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"parameters": parameters, "lora": {k: v for k, v in size["lora"].items()}, "batch": batch,
            "length": length, "gradient_checkpointing": size["checkpointing"], "bf16": bf16, "steps": STEPS,
            "train_tokens_per_s": round(train_rate, 1), "forward_tokens_per_s": round(forward_rate, 1),
            "train_peak_mb": round(train_peak, 1), "ratio": round(train_rate / forward_rate, 3)}


def run() -> dict[str, Any]:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        tiny = measure(TINY, device)
        return {"name": "train", "device": "cpu", "sizes": {"tiny": tiny}, "ratio": tiny["ratio"],
                "skipped": {size: "no GPU: random-weight 0.5B and 7B models are measured on a GPU only"
                            for size in SIZES}}
    sizes = {name: measure(size, device) for name, size in SIZES.items()}
    return {"name": "train", "device": "cuda", "gpu": torch.cuda.get_device_name(), "sizes": sizes,
            "ratio": sizes["7b"]["ratio"], "skipped": {}}


if __name__ == "__main__":
    json.dump(run(), sys.stdout)
    sys.stdout.write("\n")
