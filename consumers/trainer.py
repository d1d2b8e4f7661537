"""The trainer as a service: each DatasetBuilt becomes one model version.

Training happens in `emit`, before the position is saved, and `train` first looks for a
version of the same (dataset, base, config) in the log: a consumer killed mid-training
trains that dataset again on restart (its position was not saved), and one killed after
announcing finds the version and trains nothing, so a dataset never gets two versions of
one training. A dataset that cannot be trained (empty, damaged, another model's answers)
is reported on stderr and passed over, so it does not stop the service.

The service takes its settings from the environment (`automem consume` has no training
options): $AUTOMEM_BASE_MODEL (a --base, default local), $AUTOMEM_TRAIN_CONFIG (a
--config file), $AUTOMEM_TRAIN_DEVICE (auto), $AUTOMEM_TRAIN_DISTILL=1 (--distill), and
$AUTOMEM_ADAPTERS_DIR (a copy of each adapter for the model server). Dataset files and
adapters live in the local data folder (`--data`, else the LMDB bus's own folder).

On Kafka nothing has to keep a group membership alive during a long training: the
consumer runner's subscription is not a group member (it assigns the partitions itself
and keeps its position in its own store), so there is no max_poll_interval to miss.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec

from automem.consumers.runtime import Batch
from automem.engine.log.port import EventLog
from automem.engine.training import TrainRequest, train
from automem.schemas.errors import UserError
from automem.schemas.events import DatasetBuilt, Recorded


def request_from_env() -> TrainRequest:
    env = os.environ
    return TrainRequest(base=env.get("AUTOMEM_BASE_MODEL") or "local", config=env.get("AUTOMEM_TRAIN_CONFIG") or None,
                        device=env.get("AUTOMEM_TRAIN_DEVICE") or "auto", distill=env.get("AUTOMEM_TRAIN_DISTILL") == "1")


class Trainer:
    name = "trainer"
    families = ("dataset",)

    def __init__(self, request: TrainRequest, folder: Path) -> None:
        """`folder`: the local data folder, where datasets are read and adapters written."""
        self.request, self.folder = request, folder

    def emit(self, records: list[Recorded], log: EventLog) -> None:
        folder = self.folder
        for rec in records:
            if not isinstance(rec.event, DatasetBuilt):
                continue
            dataset = rec.event.dataset
            try:
                result = train(log, folder, msgspec.structs.replace(self.request, dataset=dataset))
            except UserError as exc:
                print(f"[trainer] dataset {dataset} not trained: {exc}", file=sys.stderr, flush=True)
                continue
            if result is not None:
                print(f"[trainer] dataset {dataset}: {'new' if result.new else 'existing'} version "
                      f"{result.model_version} (loss {result.loss:.4f}, {result.steps} steps)", file=sys.stderr, flush=True)

    def handle(self, records: list[Recorded], batch: Batch) -> None:
        """Versions live in the log; the store keeps only the position."""
