"""One training run, from a dataset in the log to a model version in it.

Everything that can be refused is checked before any weight moves: the dataset (known,
its files the announced ones, not empty), the base (a model folder, the model whose
answers the dataset holds unless distilling), the config and the device. A (dataset,
base, config) trained before gives its version back and trains nothing, so a repeated
command and a restarted consumer never make a second version of one training.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import msgspec

from automem.engine.files import room, scratch, writing
from automem.engine.log.port import EventLog
from automem.engine.models.versions import (
    MODELS,
    announce,
    place,
    publish_copy,
    trained_before,
)
from automem.engine.policy.adapters import files_digest
from automem.engine.training import config as cfg
from automem.engine.training.base import resolve_base
from automem.engine.training.data import prepare
from automem.engine.training.inputs import (
    LATEST,
    check_origin,
    find_dataset,
    load_dataset,
)
from automem.engine.training.plot import loss_html
from automem.engine.training.trainer import load_tokenizer, pick_device, train_adapter
from automem.schemas.errors import UserError
from automem.schemas.events import ModelVersionCreated

ADAPTERS_ENV = "AUTOMEM_ADAPTERS_DIR"  # set: each new adapter is also copied there (a server's folder)


class TrainRequest(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str = LATEST
    base: str = "local"
    config: str | None = None  # a TOML or JSON file of TrainConfig fields
    max_steps: int | None = None
    device: str = "auto"
    distill: bool = False


class TrainResult(msgspec.Struct, frozen=True, kw_only=True):
    model_version: str
    adapter: str  # absolute path of the adapter folder
    sha256: str
    dataset: str
    loss: float
    tokens: int
    steps: int
    device: str
    base: str
    distill: bool
    examples: int  # the dataset's, as announced
    left_out: dict[str, int]  # examples not trained on, per reason (this run only)
    params: dict[str, str]
    new: bool  # False: this training was done before; its version is returned and nothing written


def _result(v: ModelVersionCreated, folder: Path, examples: int, left_out: dict[str, int], new: bool) -> TrainResult:
    return TrainResult(model_version=v.name, adapter=str(folder / v.adapter), sha256=v.sha256, dataset=v.dataset,
                       loss=v.loss, tokens=v.tokens, steps=v.steps, device=v.device, base=v.base, distill=v.distill,
                       examples=examples, left_out=left_out, params=v.params, new=new)


def train(log: EventLog, folder: Path, request: TrainRequest, callbacks: tuple[Any, ...] = ()) -> TrainResult | None:
    """Train (or find) the version `request` names; `folder`: the store's data folder. None on the
    processes of a multi-GPU run that do not write (every rank but 0)."""
    folder = folder.resolve()
    overrides = cfg.read_overrides(Path(request.config)) if request.config else {}
    device = pick_device(request.device)
    event = find_dataset(log, request.dataset)
    dataset = load_dataset(folder, event)
    base = resolve_base(request.base)
    distill = check_origin(dataset, base, request.distill)
    config = cfg.resolve(base.parameters, overrides, request.max_steps, request.config or "--config")
    run = cfg.run_digest(event.dataset, base.identity, config)
    params = {**cfg.flatten(config), "run": run}
    if (before := trained_before(log, run)) is not None:
        return _result(before, folder, event.examples, {}, new=False)
    tokenizer = load_tokenizer(Path(base.folder))
    prepared = prepare(tokenizer, dataset.conversations, config.max_length)
    left_out = {"longer than max_length": prepared.too_long, "template changes the answer": prepared.unrenderable}
    if not prepared.examples:
        raise UserError(f"dataset {event.dataset}: none of its {event.examples} examples can be trained on "
                        f"({prepared.too_long} longer than max_length {config.max_length}, {prepared.unrenderable} "
                        "that the chat template changes): raise max_length in --config")
    root = room(folder / MODELS, "the model version")
    adapters = os.environ.get(ADAPTERS_ENV)
    if adapters:
        room(Path(adapters), f"the served copy of the version ({ADAPTERS_ENV})")
    with scratch(root, "the model version") as work:
        # the Trainer writes nothing of its own unless report_to asks: then its logs are kept
        logs = work / "trainer" if config.report_to == "none" else root / ".runs" / run
        trained = train_adapter(Path(base.folder), tokenizer, prepared.examples, config, device,
                                work / "adapter", logs, callbacks)
        if not trained.main:
            return None
        if not math.isfinite(trained.loss):
            raise UserError(f"training on dataset {event.dataset} diverged (loss {trained.loss}): lower "
                            "learning_rate in --config")
        adapter = work / "adapter"
        with writing(root, "the model version"):
            (adapter / "training.json").write_text(json.dumps(
                {"dataset": event.dataset, "base": base.spec, "base_identity": base.identity, "params": params,
                 "device": trained.device, "tokens": trained.tokens, "loss": trained.history}, indent=1) + "\n")
            (adapter / "train_config.json").write_bytes(msgspec.json.format(msgspec.json.encode(config)) + b"\n")
            (adapter / "loss.html").write_text(loss_html(trained.history, f"training loss, dataset {event.dataset}"))
            name, sha = place(adapter, folder)
    files = files_digest(folder / MODELS / name)  # what is on disk under the name: a folder kept from before counts
    if adapters:
        publish_copy(folder, name, Path(adapters))
    version = ModelVersionCreated(
        name=name, base=base.spec, adapter=f"{MODELS}/{name}", sha256=sha, dataset=event.dataset, params=params,
        base_identity=base.identity, loss=trained.loss, tokens=trained.tokens, steps=trained.steps,
        device=trained.device, distill=distill, files_sha256=files)
    new = announce(log, version)
    return _result(version, folder, event.examples, {k: v for k, v in left_out.items() if v}, new)
