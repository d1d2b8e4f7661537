"""The event log: one port, several backends, chosen by a bus URL.

May import: schemas and engine.memory (the snapshot codec); the backends (lmdb beneath it,
kafka, memory) are siblings behind the port, picked by `open_log`, and kafka-python loads
only when a kafka:// bus is opened.
"""

from __future__ import annotations

from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.open import (
    DEFAULT_DATA,
    check_servers,
    data_dir,
    local_folder,
    open_log,
    open_store,
    store_dir,
)
from automem.engine.log.port import ConflictError, EventLog, MissingData, append_read_back, last_event

__all__ = ['ConflictError', 'DEFAULT_DATA', 'EventLog', 'LmdbLog', 'MissingData', 'append_read_back', 'check_servers', 'data_dir', 'last_event', 'local_folder', 'open_log', 'open_store', 'store_dir']
