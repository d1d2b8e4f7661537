"""Services over the log, each a Consumer run by `consumers.runtime.run_consumer`."""

from __future__ import annotations

from pathlib import Path

from automem.consumers.runtime import Consumer
from automem.schemas.errors import UserError

NAMES = ("materializer", "scorer", "trainer", "publisher")


def make_consumer(name: str, folder: Path, every: int = 64, vllm: str | None = None,
                  adapter_root: str | None = None) -> Consumer:
    """`folder`: the local data folder (datasets, adapters)."""
    if (vllm is not None or adapter_root is not None) and name != "publisher":
        raise UserError("--vllm and --adapter-root are the publisher's: `automem consume publisher --vllm URL`")
    if name == "materializer":
        from automem.consumers.materializer import Materializer

        return Materializer(every)
    if name == "scorer":
        from automem.consumers.scorer import Scorer

        return Scorer()
    if name == "trainer":
        from automem.consumers.trainer import Trainer, request_from_env

        return Trainer(request_from_env(), folder)
    if name == "publisher":
        from automem.consumers.publisher import Publisher

        if vllm is None or adapter_root is None:
            raise UserError("the publisher needs --vllm URL (the vLLM server) and --adapter-root DIR "
                            "(where that server sees the adapters, one folder per version)")
        return Publisher(vllm, adapter_root)
    raise UserError(f"unknown consumer {name!r}: one of {', '.join(NAMES)}")
