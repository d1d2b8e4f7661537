"""Event schemas: every type round-trips; newer and garbage records are refused clearly."""

from __future__ import annotations

import msgspec
import pytest

from automem.engine.log import LmdbLog
from automem.engine.log.lmdb.log import u64
from automem.schemas.codec import (
    CorruptRecord,
    NewerSchema,
    decode_event,
    decode_record,
    encode_event,
    encode_record,
)
from automem.schemas.events import EVENT_TYPES, SCHEMA_VERSION, Record

from ..support.samples import SAMPLES


def test_every_event_type_has_a_sample() -> None:
    assert {type(e) for e in SAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(event) -> None:
    assert decode_event(encode_event(event)) == event
    record = Record(SCHEMA_VERSION, "ep/e1", 7, 1.5, event)
    assert decode_record(encode_record(record), "here") == record


def test_return_field_is_spelled_return_on_the_wire() -> None:
    ended = next(e for e in SAMPLES if type(e).__name__ == "EpisodeEnded")
    assert b"return" in encode_event(ended)


def test_newer_schema_is_refused_naming_both_versions() -> None:
    newer = msgspec.msgpack.encode([SCHEMA_VERSION + 1, "ep/e1", 0, 0.0, {"type": "FutureEvent", "x": 1}])
    with pytest.raises(NewerSchema) as info:
        decode_record(newer, "offset 4")
    assert f"schema version {SCHEMA_VERSION + 1}" in str(info.value) and f"version {SCHEMA_VERSION}" in str(info.value)
    assert "offset 4" in str(info.value)
    # A newer record that happens to parse is refused too.
    parses = msgspec.msgpack.encode(Record(SCHEMA_VERSION + 1, "ep/e1", 0, 0.0, SAMPLES[0]))
    with pytest.raises(NewerSchema):
        decode_record(parses, "offset 5")


def test_garbage_in_the_log_names_the_offset(log: LmdbLog) -> None:
    log.append("ep/e1", 0, SAMPLES[:3])
    with log.env.begin(write=True) as txn:
        txn.put(u64(1), b"\xc1garbage", db=log.dbs["events"])
    with pytest.raises(CorruptRecord) as info:
        list(log.read_all())
    assert "offset 1" in str(info.value)
    assert [r.offset for r in log.read_all(2)] == [2]  # what follows is still readable
