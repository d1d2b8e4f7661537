"""LoRA adapter identity: a model version is its weights, whatever its folder is called."""

from __future__ import annotations

import hashlib
from pathlib import Path

from automem.engine.policy.base import BadPolicySpec


def adapter_digest(adapter: Path) -> str:
    """sha256 of adapter_model.safetensors, after checking the folder is a peft adapter."""
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file() or not (adapter / "adapter_config.json").is_file():
        raise BadPolicySpec(
            f"{adapter} is not a LoRA adapter folder (needs adapter_config.json and"
            " adapter_model.safetensors): pass a folder that `automem train` wrote"
        )
    return hashlib.sha256(weights.read_bytes()).hexdigest()


def with_adapter(base: str, adapter: Path | None) -> str:
    """A policy name: the base model, plus the adapter's folder name and digest prefix."""
    if adapter is None:
        return base
    return f"{base}+adapter:{adapter.resolve().name}@{adapter_digest(adapter)[:12]}"
