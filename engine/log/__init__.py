"""The event log: one port, several backends, chosen by a bus URL."""

from __future__ import annotations

import os
from pathlib import Path

from automem.schemas.errors import UserError

from .lmdb_log import LmdbLog
from .port import ConflictError, EventLog, MissingData, read_events

DEFAULT_DATA = "automem-data"


def data_dir(data: str | None) -> Path:
    return Path(data or os.environ.get("AUTOMEM_DATA") or DEFAULT_DATA)


def open_log(bus: str | None = None, data: str | None = None, *, create: bool = True) -> EventLog:
    """Open the log a `--bus`/`--data` pair names. Read-only commands pass create=False."""
    url = bus or f"lmdb://{data_dir(data)}"
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise UserError(f"bad --bus {url!r}: use lmdb://DIR or kafka://HOST:PORT")
    if scheme == "lmdb":
        return LmdbLog(rest, create=create)
    if scheme == "kafka":
        from .kafka_log import KafkaLog

        servers, _, prefix = rest.partition("/")
        return KafkaLog(servers, prefix or "automem")
    raise UserError(f"unknown bus scheme {scheme!r} in {url!r}: use lmdb://DIR or kafka://HOST:PORT")


def open_store(bus: str | None = None, data: str | None = None, *, create: bool = True) -> LmdbLog:
    """The local embedded store for derived state (snapshots, positions): `--data` when
    given, else the bus itself when the bus is LMDB, else the default data folder."""
    if data is None and bus and bus.startswith("lmdb://"):
        return LmdbLog(bus[len("lmdb://"):], create=create)
    return LmdbLog(data_dir(data), create=create)


__all__ = ["ConflictError", "EventLog", "LmdbLog", "MissingData", "data_dir", "open_log", "open_store", "read_events"]
