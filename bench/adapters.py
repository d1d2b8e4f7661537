"""LoRA adapters with random, non-zero weights: they change answers, as a trained one does,
without training (the benchmarks' adapter arms and the tests' stand-in versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def random_adapter(folder: Path, out: Path, rank: int, alpha: int, targets: str | Sequence[str],
                   seed: int = 0) -> Path:
    """A peft adapter of the model in `folder`, written to `out` as `automem train` writes one;
    `targets` as peft's target_modules takes them (module names, or "all-linear")."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    modules = targets if isinstance(targets, str) else list(targets)
    peft = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, target_modules=modules, init_lora_weights=False))
    peft.save_pretrained(out, safe_serialization=True)
    return out
