"""Opening the log a `--bus`/`--data` pair names, and the local folder beside it."""

from __future__ import annotations

import os
import re
from pathlib import Path

from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError

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
        from automem.engine.log.kafka import KafkaLog

        servers, _, prefix = rest.partition("/")
        check_servers(url, servers)
        return KafkaLog(servers, prefix or "automem")
    raise UserError(f"unknown bus scheme {scheme!r} in {url!r}: use lmdb://DIR or kafka://HOST:PORT")


_SERVER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


def check_servers(url: str, servers: str) -> None:
    """Kafka bootstrap servers as HOST:PORT[,HOST:PORT...] (IPv6 in brackets), ports 1..65535."""
    for server in servers.split(","):
        match = _SERVER.fullmatch(server)
        if not match or not 1 <= int(match[2]) <= 65535:
            raise UserError(f"bad --bus {url!r}: {server!r} is not HOST:PORT with a port 1..65535; "
                            "use kafka://HOST:PORT[,HOST:PORT...][/PREFIX] (IPv6 as [::1]:9092)")


def local_folder(bus: str | None = None, data: str | None = None) -> Path:
    """The local folder for derived state and files (snapshots, positions, datasets,
    adapters): `--data` when given, else the bus itself when the bus is LMDB, else the
    default data folder."""
    if data is None and bus and bus.startswith("lmdb://"):
        return Path(bus[len("lmdb://"):])
    return data_dir(data)


def open_store(bus: str | None = None, data: str | None = None, *, create: bool = True) -> LmdbLog:
    """The local embedded store in `local_folder(bus, data)`."""
    return LmdbLog(local_folder(bus, data), create=create)


def store_dir(bus: str | None, data: str | None) -> Path:
    """The embedded store a `--bus`/`--data` pair names, for commands on the store's files."""
    if bus and not bus.startswith("lmdb://"):
        raise UserError(f"`automem store` works on the embedded LMDB store, not {bus!r}: pass --data DIR or "
                        "--bus lmdb://DIR (a Kafka cluster is backed up with Kafka's own tools)")
    return local_folder(bus, data)

