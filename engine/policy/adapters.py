"""Weights identity: an adapter is its weights file and a base model its config and weights
files, whatever their folders are called.

`adapter_digest` is the one hash of an adapter: a version's name and recorded sha256, the
check before a version is loaded, and the adapter part of a policy's name all come from it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from automem.engine.policy.base import BadPolicySpec

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
ADAPTER_FILES = (WEIGHTS, CONFIG)  # what decides an adapter's behaviour; a version keeps these alone


def files_digest(adapter: Path) -> str:
    """sha256 (hex) of every file that decides how an adapter behaves: its weights and its
    config (rank, alpha, target modules). A version records it beside the weights' digest, so
    an edited `lora_alpha` is caught before the version loads."""
    h = hashlib.sha256()
    for name in ADAPTER_FILES:
        with open(adapter / name, "rb") as f:
            h.update(name.encode() + b"\0" + hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def adapter_digest(adapter: Path) -> str:
    """sha256 (hex) of the adapter folder's adapter_model.safetensors."""
    with open(adapter / WEIGHTS, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def with_adapter(base: str, adapter: Path | None) -> str:
    """A policy name: the base model, plus the adapter's folder name and digest prefix, after
    checking the folder is a peft adapter."""
    if adapter is None:
        return base
    if not (adapter / WEIGHTS).is_file() or not (adapter / CONFIG).is_file():
        raise BadPolicySpec(
            f"{adapter} is not a LoRA adapter folder (needs {CONFIG} and {WEIGHTS}):"
            " pass a folder that `automem train` wrote"
        )
    return f"{base}+adapter:{adapter.resolve().name}@{adapter_digest(adapter)[:12]}"


def base_identity(folder: Path) -> str:
    """sha256 over config.json and every *.safetensors file, names included, in name order:
    which weights a version adapts, recorded when it is trained and checked when it is loaded."""
    digest = hashlib.sha256()
    for path in [folder / "config.json", *sorted(folder.glob("*.safetensors"))]:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:32]
