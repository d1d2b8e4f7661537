"""The base model a specialist is trained on: where its files are, what it is, what it is called.

A base is named as a policy spec names it (`local`, `local:PATH`) or, for the deploy's
GPU trainer, by a Hugging Face id whose snapshot is found in (or, online, fetched into)
the Hugging Face cache. Its identity is a digest of its config and weights files, so a
version records exactly which weights it adapts, whatever the folder is called.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from automem.engine.policy.adapters import base_identity
from automem.engine.policy.base import BadPolicySpec
from automem.engine.policy.convert import MODEL_ID, ensure_converted, is_model_folder
from automem.engine.policy.spec import ADAPTER
from automem.schemas.errors import UserError

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class Base(msgspec.Struct, frozen=True, kw_only=True):
    spec: str  # as the event records it: local or local:ABSOLUTE_PATH
    folder: str
    identity: str
    parameters: int
    names: tuple[str, ...]  # the model names episodes record for answers of this base


def resolve_base(spec: str) -> Base:
    """`local`, `local:PATH`, `PATH`, or a Hugging Face id `ORG/NAME`."""
    target = spec.removeprefix("local:") if spec != "local" else ""
    if ADAPTER in spec:
        raise UserError(f"--base {spec!r} names an adapter: train on the base model alone")
    if not target:
        names: tuple[str, ...]
        folder, recorded = _converted(), "local"
        names = (MODEL_ID, f"openai:{folder}", f"vllm:{folder}")  # in-process, or its folder served by name
    elif Path(target).expanduser().is_dir() or not _HUB_ID.fullmatch(target):
        folder = Path(target).expanduser().resolve()
        names, recorded = (f"local:{folder.name}", f"openai:{folder}", f"vllm:{folder}"), f"local:{folder}"
    else:
        folder = _snapshot(target)
        names, recorded = (f"local:{folder.name}", f"openai:{target}", f"vllm:{target}"), f"local:{folder}"
    if not is_model_folder(folder):
        raise UserError(f"--base {spec!r}: {folder} is not a Hugging Face model folder (needs config.json and "
                        "*.safetensors)")
    return Base(spec=recorded, folder=str(folder), identity=base_identity(folder), parameters=parameters(folder),
                names=names)


def names_base(recorded: str, spec: str) -> bool:
    """Whether a version's recorded base (`local`, `local:FOLDER`) is what `spec` names, without
    resolving `spec` here: a driver on a bus has neither the weights nor the trainer's folders.
    A Hub id matches its snapshot folder in the Hugging Face cache; a path, by folder name."""
    if recorded == spec or spec == "local" or recorded == "local":
        return recorded == spec
    folder = Path(recorded.removeprefix("local:"))
    target = spec.removeprefix("local:")
    if _HUB_ID.fullmatch(target) and not Path(target).expanduser().is_dir():
        return f"models--{target.replace('/', '--')}" in folder.parts
    return folder.name == Path(target).expanduser().name


def _converted() -> Path:
    try:
        return ensure_converted()
    except BadPolicySpec as exc:
        raise UserError(str(exc)) from None


def _snapshot(hub_id: str) -> Path:
    """The cached snapshot of a Hub model: config, tokenizer and safetensors weights only."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub_id, allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.model",
                                                              "*.txt"]))
    except Exception as exc:  # offline, gated, unknown id: the hub's own words, one line
        raise UserError(f"--base {hub_id}: not a folder here and not fetched from the Hugging Face Hub "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def parameters(folder: Path) -> int:
    """How many parameters the weights hold, from the safetensors headers alone (no tensor is read)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                count = 1
                for n in f.get_slice(key).get_shape():
                    count *= n
                total += count
    return total


def answered_by(base: Base, model: str) -> bool:
    """Whether an answer recorded under `model` came from this base (an adapter on it counts as it)."""
    return model.split(ADAPTER, 1)[0] in base.names
