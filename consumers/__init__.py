"""Services over the log, each a Consumer run by `consumers.runner.run_consumer`."""

from __future__ import annotations

from automem.consumers.services import (
    NAMES,
    make_consumer,
)

__all__ = ['NAMES', 'make_consumer']
