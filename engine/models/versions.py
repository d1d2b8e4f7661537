"""Model versions: adapters content-addressed under DATA/models/<name>/, announced once in the log.

A version's name is derived from its weights (`mem-` and 12 hex of the safetensors file's
sha256), so two versions never share a name and vLLM never reuses a prefix cache built
with other weights. The folder is written in a scratch folder and renamed into place; the
event comes after the rename, so an announced adapter is always whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from automem.engine.files import scratch, settle, writing
from automem.engine.log.port import EventLog, append_once
from automem.engine.models.registry import created
from automem.engine.policy.adapters import WEIGHTS, adapter_digest
from automem.schemas.errors import UserError
from automem.schemas.events import ModelVersionCreated
from automem.schemas.streams import model_stream

MODELS = "models"  # under the store's data folder


def version_name(sha256: str) -> str:
    return f"mem-{sha256[:12]}"


def place(built: Path, folder: Path) -> tuple[str, str]:
    """Rename a finished adapter folder into DATA/models/<name>; (name, sha256). A folder already
    there under that name holds the same weights (or is refused as changed) and is kept."""
    sha = adapter_digest(built)
    name = version_name(sha)
    target = folder / MODELS / name
    if target.is_dir() or not settle(built, target):
        if not (target / WEIGHTS).is_file() or adapter_digest(target) != sha:
            raise UserError(f"{target} exists with other weights (a content-addressed adapter was changed): "
                            "remove that folder and train again")
    return name, sha


def publish_copy(folder: Path, name: str, adapters: Path) -> None:
    """A copy in a folder a server reads (the deploy's shared /adapters volume), also renamed into place."""
    target = adapters / name
    if target.is_dir():
        return
    what = f"the served copy of {name}"
    with writing(adapters, what), scratch(adapters, what) as work:
        shutil.copytree(folder / MODELS / name, work / name)
        settle(work / name, target)


def announce(log: EventLog, event: ModelVersionCreated) -> bool:
    """Append the version once; False when its stream already holds it."""
    return append_once(log, model_stream(event.name), event)


def trained_before(log: EventLog, run: str) -> ModelVersionCreated | None:
    """The version of an earlier training with the same run digest (dataset, base, config)."""
    return next((v for v in created(log) if v.params.get("run") == run), None)
