"""Services over the log, each a Consumer run by `consumers.runtime.run_consumer`.

May import: every engine package except the CLI. Each service handles a batch of records and
writes its results and its position through one `Batch` (consumers/runtime), so a crash
between the two can never happen.
"""

from __future__ import annotations

from automem.consumers.services import (
    NAMES,
    make_consumer,
)

__all__ = ['NAMES', 'make_consumer']
