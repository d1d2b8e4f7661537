"""One suite for the event-log port, run unchanged on both backends: LMDB and Kafka (Tansu)."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from automem.engine.log import ConflictError, EventLog, open_log
from automem.engine.log.kafka import KafkaLog
from automem.schemas.events import OutcomeObserved

from ..support.broker import Broker
from ..support.samples import SAMPLES


def outcomes(n: int, tag: str = "x", start: int = 0) -> list[OutcomeObserved]:
    return [OutcomeObserved(step=start + i, kind="k", detail=tag) for i in range(n)]


@pytest.fixture(params=["lmdb", "kafka"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[callable]:
    """A factory of handles on one fresh log (several handles act as several processes)."""
    opened: list[EventLog] = []
    if request.param == "lmdb":
        url = f"lmdb://{tmp_path / 'data'}"
    else:
        broker: Broker = request.getfixturevalue("broker")
        url = f"kafka://{broker.url}/t{uuid.uuid4().hex[:8]}"

    def make() -> EventLog:
        log = open_log(url)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def test_append_and_read_in_order(backend) -> None:
    log = backend()
    assert log.append("ep/a", 0, SAMPLES[:4]) == 4
    assert log.append("ep/b", 0, SAMPLES[4:6]) == 2
    assert log.append("ep/a", 4, SAMPLES[6:8]) == 6
    assert [r.event for r in log.read_stream("ep/a")] == SAMPLES[:4] + SAMPLES[6:8]
    assert [r.seq for r in log.read_stream("ep/a", 3)] == [3, 4, 5]
    assert log.streams("ep") == ["ep/a", "ep/b"] and log.streams("model") == []
    assert log.head("ep/a") == 6 and log.head("ep/zzz") == 0
    fresh = backend()  # another handle (process) sees the same
    assert fresh.head("ep/a") == 6 and [r.event for r in fresh.read_stream("ep/b")] == SAMPLES[4:6]


def test_optimistic_concurrency_conflict(backend) -> None:
    log = backend()
    log.append("ep/a", 0, outcomes(3))
    for wrong in (0, 2, 4, 100):
        with pytest.raises(ConflictError) as info:
            log.append("ep/a", wrong, outcomes(1))
        assert info.value.actual == 3
    assert log.head("ep/a") == 3 and sum(1 for _ in log.read_stream("ep/a")) == 3


def test_a_stale_second_writer_never_shows_readers_two_versions(backend) -> None:
    first, second = backend(), backend()
    assert second.head("ep/race") == 0  # the second writer looks, then the first one writes
    first.append("ep/race", 0, outcomes(2, "first"))
    try:
        second.append("ep/race", 0, outcomes(3, "second"))  # Kafka cannot refuse this; LMDB does
    except ConflictError:
        pass
    reader = backend()
    assert [e.detail for e in (r.event for r in reader.read_stream("ep/race"))] == ["first", "first"]
    assert reader.head("ep/race") == 2


def test_bad_stream_ids_are_refused(backend) -> None:
    log = backend()
    for bad in ("", "nofamily", "ep/a\x00b", "bogus/x"):
        with pytest.raises(ValueError):
            log.append(bad, 0, outcomes(1))


def test_long_stream(backend) -> None:
    log = backend()
    seq = 0
    for i in range(20):
        seq = log.append("ep/long", seq, outcomes(50, start=i * 50))
    assert [r.event.step for r in log.read_stream("ep/long")] == list(range(1000))
    assert [r.event.step for r in log.read_stream("ep/long", 990)] == list(range(990, 1000))


def test_subscription_resumes_exactly_from_a_saved_position(backend) -> None:
    log = backend()
    for i in range(6):
        log.append(f"ep/s{i % 3}", log.head(f"ep/s{i % 3}"), outcomes(5, f"s{i % 3}", start=i * 5))
    log.append("model/m", 0, outcomes(2, "m"))

    def drain(sub, limit: int | None = None) -> list:
        got: list = []
        for _ in range(50):
            got += sub.poll(max_records=7, timeout_s=0.5)
            if limit is not None and len(got) >= limit or (limit is None and len(got) >= 30):
                break
        return got

    sub = log.subscribe(("ep",))
    first = drain(sub, limit=10)
    token = sub.position()
    sub.close()
    resumed = log.subscribe(("ep",))
    resumed.seek(token)
    rest = drain(resumed, limit=30 - len(first))
    resumed.close()
    seen = [(r.stream, r.seq) for r in first + rest]
    assert len(seen) == len(set(seen)) == 30  # nothing twice, nothing lost, no other family
    for stream, group in itertools.groupby(sorted(seen), key=lambda x: x[0]):
        assert [seq for _, seq in group] == list(range(10)), stream


@pytest.mark.slow
def test_unreachable_broker_is_a_clear_error() -> None:
    from automem.schemas.errors import UserError

    from ..support.broker import free_port

    with pytest.raises(UserError, match="cannot reach the Kafka broker"):
        KafkaLog(f"127.0.0.1:{free_port()}", timeout_s=2)
