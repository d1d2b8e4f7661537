"""msgpack encoding of log records, with schema-version and corruption checks.

A record stored in LMDB is sealed: byte 0xC1 (which msgpack never uses), the CRC-32 of
the msgpack bytes, then those bytes; a flipped byte is then named where it is instead of
decoding into a wrong value. A record without the mark (written before checksums: a
plain msgpack array, first byte 0x95) still reads. Kafka batches carry Kafka's own CRC.
"""

from __future__ import annotations

import struct
import zlib

import msgspec

from automem.schemas.errors import UserError
from automem.schemas.events import SCHEMA_VERSION, AnyEvent, Batch, Record


class LogError(UserError):
    """A problem with the stored log itself."""


class CorruptRecord(LogError):
    """A stored record does not decode; `where` names its position in the log."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"corrupted record at {where}: {reason}; the log cannot be trusted from there "
            "(`automem store check` lists every damaged record; `automem store restore BACKUP` puts a backup back)"
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


SEAL = 0xC1
_seal = struct.Struct(">BI")


def seal(data: bytes) -> bytes:
    """`data` behind the mark and its checksum, as LMDB stores records and snapshots."""
    return _seal.pack(SEAL, zlib.crc32(data)) + data


def encode_record(record: Record) -> bytes:
    return seal(_encoder.encode(record))


def unseal(data: bytes, where: str) -> bytes | memoryview:
    """The msgpack bytes of a sealed value, its checksum verified (unsealed legacy values as they are)."""
    if not data or data[0] != SEAL:
        return data
    if len(data) < _seal.size:
        raise CorruptRecord(where, f"a sealed record of {len(data)} bytes is too short for its checksum")
    body = memoryview(data)[_seal.size:]
    stored, actual = _seal.unpack_from(data)[1], zlib.crc32(body)
    if stored != actual:
        raise CorruptRecord(where, f"checksum mismatch (stored {stored:08x}, bytes give {actual:08x}): a byte of it changed on disk")
    return body


def encode_event(event: AnyEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> AnyEvent:
    return _event_decoder.decode(data)


def encode_batch(batch: Batch) -> bytes:
    return _encoder.encode(batch)


def decode_record(data: bytes, where: str) -> Record:
    """Decode one stored record; refuse newer schemas and name the position of garbage."""
    return _checked(_record_decoder, unseal(data, where), where)


def decode_batch(data: bytes, where: str) -> Batch:
    return _checked(_batch_decoder, data, where)


# msgspec raises UnicodeDecodeError, not DecodeError, for invalid UTF-8 inside a string
UNDECODABLE = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


def _checked(decoder: msgspec.msgpack.Decoder, data: bytes | memoryview, where: str):  # -> Record | Batch
    try:
        out = decoder.decode(data)
    except UNDECODABLE as exc:
        version = _peek_version(data)
        if version is not None and version > SCHEMA_VERSION:
            raise NewerSchema(where, version) from None
        raise CorruptRecord(where, str(exc)) from None
    if out.v > SCHEMA_VERSION:
        raise NewerSchema(where, out.v)
    return out


def _peek_version(data: bytes | memoryview) -> int | None:
    try:
        head = _head_decoder.decode(data)
    except UNDECODABLE:
        return None
    if head and isinstance(head[0], int) and not isinstance(head[0], bool):
        return head[0]
    return None
