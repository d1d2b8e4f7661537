"""msgpack encoding of log records, with schema-version and corruption checks."""

from __future__ import annotations

import msgspec

from .errors import UserError
from .events import SCHEMA_VERSION, AnyEvent, Batch, Record


class LogError(UserError):
    """A problem with the stored log itself."""


class CorruptRecord(LogError):
    """A stored record does not decode; `where` names its position in the log."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"corrupted record at {where}: {reason}; the log cannot be trusted from there "
            "(restore the data directory from a backup or re-run the episode)"
        )
        self.where = where


class NewerSchema(LogError):
    """A record written by a newer automem than this one."""

    def __init__(self, where: str, found: int) -> None:
        super().__init__(
            f"record at {where} has schema version {found}, this automem reads up to "
            f"version {SCHEMA_VERSION}: upgrade automem to read this log"
        )
        self.where = where
        self.found = found


_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(Record)
_batch_decoder = msgspec.msgpack.Decoder(Batch)
_event_decoder = msgspec.msgpack.Decoder(AnyEvent)
_head_decoder = msgspec.msgpack.Decoder(tuple)  # a Record is a msgpack array: [v, ...]


def encode_record(record: Record) -> bytes:
    return _encoder.encode(record)


def encode_event(event: AnyEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> AnyEvent:
    return _event_decoder.decode(data)


def encode_batch(batch: Batch) -> bytes:
    return _encoder.encode(batch)


def decode_record(data: bytes, where: str) -> Record:
    """Decode one stored record; refuse newer schemas and name the offset of garbage."""
    return _checked(_record_decoder, data, where)


def decode_batch(data: bytes, where: str) -> Batch:
    return _checked(_batch_decoder, data, where)


def _checked(decoder: msgspec.msgpack.Decoder, data: bytes, where: str):  # -> Record | Batch
    try:
        out = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        version = _peek_version(data)
        if version is not None and version > SCHEMA_VERSION:
            raise NewerSchema(where, version) from None
        raise CorruptRecord(where, str(exc)) from None
    if out.v > SCHEMA_VERSION:
        raise NewerSchema(where, out.v)
    return out


def _peek_version(data: bytes) -> int | None:
    try:
        head = _head_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if head and isinstance(head[0], int) and not isinstance(head[0], bool):
        return head[0]
    return None
