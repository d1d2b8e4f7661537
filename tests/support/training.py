"""Datasets for the trainer's tests: short chat examples in the dataset engine's layout."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec

from automem.engine.log import LmdbLog
from automem.schemas.events import DatasetBuilt

SYSTEM = "You keep the memory of an agent playing Crafter. Answer with memory commands only."


def conversation(i: int, turns: int = 1) -> list[dict[str, str]]:
    """A short chat example; with turns > 1, earlier assistant turns come before the final answer."""
    messages = [{"role": "system", "content": SYSTEM}]
    for t in range(turns):
        messages.append({"role": "user", "content": f"Step {i}, turn {t}. You see a tree {i} north."})
        messages.append({"role": "assistant", "content": f"<|APPEND|>map_notes.txt|step {i}: tree {i + t} north<|END|>"
                                                         + ("<|DONE|>" if t == turns - 1 else "")})
    return messages


def write_dataset(data: Path, label: str, examples: list[list[dict[str, str]]], models: list[str],
                  sha256: str | None = None) -> DatasetBuilt:
    """A dataset in the dataset engine's layout (DATA/datasets/ID/, paths relative to DATA) and its
    event; its id is its manifest's hash, as the engine names datasets (`label` tells them apart)."""
    lines = b"".join(msgspec.json.encode({"messages": m}) + b"\n" for m in examples)
    manifest = json.dumps({"format": "chat-jsonl", "label": label, "examples": len(examples),
                           "models": models}).encode()
    dataset = hashlib.sha256(manifest).hexdigest()[:16]
    folder = data / "datasets" / dataset
    folder.mkdir(parents=True)
    (folder / "examples.jsonl").write_bytes(lines)
    (folder / "manifest.json").write_bytes(manifest)
    event = DatasetBuilt(dataset=dataset, examples=len(examples), sha256=sha256 or hashlib.sha256(lines).hexdigest(),
                         path=f"datasets/{dataset}/examples.jsonl", manifest=f"datasets/{dataset}/manifest.json")
    with LmdbLog(data) as log:
        log.append(f"dataset/{dataset}", 0, [event])
    return event


def tamper(path: Path, damage: str) -> None:
    """One byte changed in the middle, the second half cut off, or the file gone."""
    if damage == "delete":
        path.unlink()
        return
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw) if damage == "flip" else bytes(raw[:len(raw) // 2]))
