"""Model versions: adapters content-addressed under DATA/models/<name>/, announced once in the log.

A version's name is derived from its weights (`mem-` and 12 hex of the safetensors file's
sha256), so two versions never share a name and vLLM never reuses a prefix cache built
with other weights. The folder is written in a scratch folder and renamed into place; the
event comes after the rename, so an announced adapter is always whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import msgspec

from automem.engine.log import ConflictError
from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError
from automem.schemas.events import ModelVersionCreated, ModelVersionEvaluated, ModelVersionPromoted
from automem.schemas.streams import model_stream

MODELS = "models"  # under the store's data folder
WEIGHTS = "adapter_model.safetensors"


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def version_name(sha256: str) -> str:
    return f"mem-{sha256[:12]}"


def place(scratch: Path, folder: Path) -> tuple[str, str]:
    """Rename a finished adapter folder into DATA/models/<name>; (name, sha256). A folder already
    there under that name holds the same weights (or is refused as changed) and is kept."""
    sha = file_sha256(scratch / WEIGHTS)
    name = version_name(sha)
    target = folder / MODELS / name
    if target.is_dir():
        shutil.rmtree(scratch)
        if not (target / WEIGHTS).is_file() or file_sha256(target / WEIGHTS) != sha:
            raise UserError(f"{target} exists with other weights (a content-addressed adapter was changed): "
                            "remove that folder and train again")
        return name, sha
    try:
        os.rename(scratch, target)
    except OSError:
        if not target.is_dir():  # not a concurrent run of the same training that got there first
            raise
        shutil.rmtree(scratch, ignore_errors=True)
    return name, sha


def publish_copy(folder: Path, name: str, adapters: Path) -> None:
    """A copy in a folder a server reads (the deploy's shared /adapters volume), also renamed into place."""
    target = adapters / name
    if target.is_dir():
        return
    adapters.mkdir(parents=True, exist_ok=True)
    scratch = adapters / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(folder / MODELS / name, scratch)
    try:
        os.rename(scratch, target)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
        if not target.is_dir():
            raise


def announce(log: EventLog, event: ModelVersionCreated) -> bool:
    """Append the version once; False when its stream already holds it."""
    stream = model_stream(event.name)
    if log.head(stream):
        return False
    try:
        log.append(stream, 0, [event])
    except ConflictError:
        return False
    return True


def created(log: EventLog) -> list[ModelVersionCreated]:
    """Every version in the log, in the order they were written."""
    found = [(r.offset, r.event) for s in log.streams("model") for r in log.read_stream(s)
             if isinstance(r.event, ModelVersionCreated)]
    return [e for _, e in sorted(found, key=lambda f: f[0])]


def trained_before(log: EventLog, run: str) -> ModelVersionCreated | None:
    """The version of an earlier training with the same run digest (dataset, base, config)."""
    return next((v for v in created(log) if v.params.get("run") == run), None)


class VersionRow(msgspec.Struct, frozen=True, kw_only=True):
    model_version: str
    base: str
    dataset: str
    loss: float
    tokens: int
    steps: int
    device: str
    distill: bool
    adapter: str
    sha256: str
    params: dict[str, str]
    evaluations: list[ModelVersionEvaluated]
    promotions: list[ModelVersionPromoted]


def versions(log: EventLog) -> list[VersionRow]:
    """Each version with the evaluations and promotions its stream holds, oldest version first."""
    rows = []
    for v in created(log):
        events = [r.event for r in log.read_stream(model_stream(v.name))]
        rows.append(VersionRow(
            model_version=v.name, base=v.base, dataset=v.dataset, loss=v.loss, tokens=v.tokens, steps=v.steps,
            device=v.device, distill=v.distill, adapter=v.adapter, sha256=v.sha256, params=v.params,
            evaluations=[e for e in events if isinstance(e, ModelVersionEvaluated)],
            promotions=[e for e in events if isinstance(e, ModelVersionPromoted)]))
    return rows
