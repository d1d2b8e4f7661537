"""Services over the log, each a Consumer run by `consumers.runner.run_consumer`."""

from __future__ import annotations

from automem.schemas.errors import UserError

from .runner import Consumer

NAMES = ("materializer", "scorer", "trainer")


def make_consumer(name: str, every: int = 64) -> Consumer:
    if name == "materializer":
        from .materializer import Materializer

        return Materializer(every)
    if name == "scorer":
        from .scorer import Scorer

        return Scorer()
    if name == "trainer":
        from .trainer import Trainer, request_from_env

        return Trainer(request_from_env())
    raise UserError(f"unknown consumer {name!r}: one of {', '.join(NAMES)}")
