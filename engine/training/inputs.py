"""The dataset a training run reads: found in the log, its files checked against the event."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import msgspec

from automem.engine.agent.prompts import Message
from automem.engine.log.port import EventLog
from automem.engine.training.base import Base, answered_by
from automem.engine.training.data import is_conversation
from automem.schemas.errors import UserError
from automem.schemas.events import DatasetBuilt

LATEST = "latest"


class Dataset(msgspec.Struct, frozen=True, kw_only=True):
    event: DatasetBuilt
    conversations: list[list[Message]]
    models: list[str]  # the models whose answers it holds (its manifest's)


def find_dataset(log: EventLog, wanted: str) -> DatasetBuilt:
    """The DatasetBuilt of one id, or the one written last to the log for `latest`."""
    built = [(r.offset, r.event) for s in log.streams("dataset") for r in log.read_stream(s)
             if isinstance(r.event, DatasetBuilt)]
    if not built:
        raise UserError("no datasets in this store: run `automem dataset build` first")
    if wanted == LATEST:
        return max(built, key=lambda b: b[0])[1]
    for _, event in built:
        if event.dataset == wanted:
            return event
    known = ", ".join(sorted(e.dataset for _, e in built)[:10])
    raise UserError(f"unknown dataset {wanted!r}: datasets in this store: {known} (or --dataset latest)")


def load_dataset(folder: Path, event: DatasetBuilt) -> Dataset:
    """Read examples and manifest from the store's data folder, refusing a file that is not the announced one."""
    path, manifest = folder / event.path, folder / event.manifest
    try:
        for file in (path, manifest) if event.manifest else (path,):
            if not stat.S_ISREG(file.stat().st_mode):  # a FIFO would block the read forever
                raise UserError(f"dataset {event.dataset}: {file} is not a regular file: rebuild it with "
                                "`automem dataset build` or restore the store's data folder")
        data = path.read_bytes()
        document = manifest.read_bytes() if event.manifest else b""
        # the dataset id is the manifest's hash: an edited manifest (its models, say) is not this dataset
        if event.manifest and hashlib.sha256(document).hexdigest()[:16] != event.dataset:
            raise UserError(f"dataset {event.dataset}: {manifest} does not hash to the dataset's id (changed or "
                            "damaged): rebuild it with `automem dataset build`")
        models = json.loads(document).get("models") if event.manifest else None
    except OSError as exc:
        raise UserError(f"dataset {event.dataset}: cannot read {exc.filename} ({exc.strerror}): "
                        "rebuild it with `automem dataset build` or restore the store's data folder") from None
    except ValueError:
        raise UserError(f"dataset {event.dataset}: {manifest} is not valid JSON: rebuild it with "
                        "`automem dataset build`") from None
    if hashlib.sha256(data).hexdigest() != event.sha256:
        raise UserError(f"dataset {event.dataset}: {path} does not match the sha256 of its DatasetBuilt event "
                        "(changed or damaged): rebuild it with `automem dataset build`")
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise UserError(f"dataset {event.dataset}: its manifest names no models (the answers' origin): "
                        "rebuild it with `automem dataset build`")
    conversations: list[list[Message]] = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if not is_conversation(doc):
            raise UserError(f"dataset {event.dataset}: line {number} of {path} is not a chat example ending with "
                            "an assistant answer")
        conversations.append(doc["messages"])
    if not conversations:
        raise UserError(f"dataset {event.dataset} has no examples: build one that keeps some decisions")
    return Dataset(event=event, conversations=conversations, models=models)


def check_origin(dataset: Dataset, base: Base, distill: bool) -> bool:
    """Whether this is distillation (the answers are another model's); refused unless --distill asks for it."""
    foreign = [m for m in dataset.models if not answered_by(base, m)]
    if foreign and not distill:
        raise UserError(f"dataset {dataset.event.dataset} holds answers of {', '.join(foreign)}, not of the base "
                        f"{base.spec} ({base.names[0]}): pass --distill to learn from another model's answers on "
                        "purpose, or train the model that gave them")
    return bool(foreign)
