"""Memory as a folder of text files: a pure reducer, versions, snapshots, time travel.

May import: schemas only. Everything here is a pure function of its inputs: no log, no
backend, no clock.
"""

from automem.engine.memory.reducer import (
    KINDS,
    READ_KINDS,
    WRITE_KINDS,
    OpResult,
    apply,
    check_name,
    line_cap,
)
from automem.engine.memory.state import EMPTY, MemFile, MemoryState, content_version

__all__ = [
    "EMPTY", "KINDS", "READ_KINDS", "WRITE_KINDS", "MemFile", "MemoryState", "OpResult",
    "apply", "check_name", "content_version", "line_cap",
]
