"""The event-log port on Kafka (kafka-python): one topic per stream family, keyed by stream.

Each append is ONE Kafka message holding the whole batch, so a batch is atomic and an
episode stays in one partition, in order. Kafka has no compare-and-set, so the expected
seq is checked against this process's view of the stream (the head it wrote or read);
readers are idempotent on (stream, seq): a batch that repeats or overlaps seqs already
seen (a producer retry, a second writer that lost the race) is skipped, first one wins.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

import msgspec
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownMemberIdError,
)
from kafka.partitioner.default import murmur2

from automem.engine.log.port import ConflictError
from automem.schemas.codec import LogError, decode_batch, encode_batch
from automem.schemas.errors import UserError
from automem.schemas.events import (
    SCHEMA_VERSION,
    AnyEvent,
    Batch,
    DeadLettered,
    Recorded,
)
from automem.schemas.streams import FAMILIES, check_stream, family

DEFAULT_PARTITIONS = 6
# A group member that does not poll for this long is presumed dead and its partitions move
# on. Rollout workers poll between episodes, so it bounds an episode's length; it is also
# how long a fresh group's first join waits. Tests set it to a few seconds.
_GROUP_POLL_MS = int(os.environ.get("AUTOMEM_KAFKA_MAX_POLL_MS", "900000"))


@contextmanager
def _broker_errors(bootstrap: str, doing: str) -> Iterator[None]:
    """Any client failure while reading becomes one clear LogError (exit status 2)."""
    try:
        yield
    except KafkaError as exc:
        raise LogError(f"Kafka broker {bootstrap} failed while {doing} ({type(exc).__name__}: {exc}); "
                       "check that it is up and reachable") from None


class KafkaLog:
    """`kafka://HOST:PORT[,HOST:PORT]/PREFIX`: topics are PREFIX.FAMILY (default prefix automem)."""

    def __init__(self, bootstrap: str, prefix: str = "automem", *, partitions: int = DEFAULT_PARTITIONS,
                 timeout_s: float = 10.0) -> None:
        self.bootstrap, self.prefix, self.timeout_s = bootstrap, prefix, timeout_s
        self.url = f"kafka://{bootstrap}/{prefix}"
        self.servers = bootstrap.split(",")
        ms = int(timeout_s * 1000)
        try:
            self.admin = KafkaAdminClient(bootstrap_servers=self.servers, request_timeout_ms=ms,
                                          bootstrap_timeout_ms=ms, client_id="automem-admin")
        except (KafkaError, OSError) as exc:
            raise UserError(f"cannot reach the Kafka broker at {bootstrap} ({type(exc).__name__}): "
                            "start it or fix --bus kafka://HOST:PORT") from None
        try:
            with _broker_errors(bootstrap, "setting up topics and the producer"):
                self._ensure_topics(partitions)
                self.producer = KafkaProducer(
                    bootstrap_servers=self.servers, acks="all", enable_idempotence=True, linger_ms=0,
                    max_block_ms=ms, request_timeout_ms=ms, delivery_timeout_ms=ms + 1000, client_id="automem",
                )
        except BaseException:
            self.admin.close()
            raise
        self._partitions: dict[str, int] = {}
        self._heads: dict[str, int] = {}

    def topic(self, fam: str) -> str:
        return f"{self.prefix}.{fam}"

    def _ensure_topics(self, partitions: int) -> None:
        """Create the topics automem needs, or say clearly that we may not."""
        existing = set(self.admin.list_topics())
        missing = [self.topic(f) for f in FAMILIES if self.topic(f) not in existing]
        if not missing:
            return
        try:
            # an event log keeps everything: no time- or size-based deletion
            self.admin.create_topics([NewTopic(t, partitions, 1, topic_configs={"retention.ms": "-1", "retention.bytes": "-1"})
                                      for t in missing])
        except TopicAlreadyExistsError:
            pass  # another process created them meanwhile
        except TopicAuthorizationFailedError:
            raise UserError(f"no permission to create Kafka topics {', '.join(missing)} on {self.bootstrap}: "
                            "ask an admin to create them, or use a --bus prefix you may create") from None

    def _partition_of(self, stream: str) -> TopicPartition:
        """The key's partition, by the Java client's murmur2 rule, so other clients agree."""
        topic = self.topic(family(stream))
        if topic not in self._partitions:
            with _broker_errors(self.bootstrap, f"looking up {topic}"):
                parts = self.producer.partitions_for(topic)
            if not parts:
                raise LogError(f"Kafka topic {topic} has no partitions visible on {self.bootstrap}")
            self._partitions[topic] = len(parts)
        n = self._partitions[topic]
        return TopicPartition(topic, (murmur2(stream.encode("utf-8")) & 0x7FFFFFFF) % n)

    # -------------------------------------------------------------------- writing

    def append(self, stream: str, expected_seq: int, events: Sequence[AnyEvent]) -> int:
        check_stream(stream)
        head = self.head(stream)
        if head != expected_seq:
            raise ConflictError(stream, expected_seq, head)
        if not events:
            return head
        value = encode_batch(Batch(SCHEMA_VERSION, stream, head, time.time(), list(events)))
        tp = self._partition_of(stream)
        try:
            self.producer.send(tp.topic, key=stream.encode("utf-8"), value=value, partition=tp.partition).get(
                timeout=self.timeout_s + 2)
        except KafkaError as exc:
            raise LogError(f"Kafka broker {self.bootstrap} did not acknowledge {stream} seq {head}.. "
                           f"({type(exc).__name__}): that batch may not be stored; earlier acknowledged "
                           "batches are safe. Check the broker and retry") from None
        self._heads[stream] = head + len(events)
        return self._heads[stream]

    # -------------------------------------------------------------------- reading

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(bootstrap_servers=self.servers, enable_auto_commit=False,
                             request_timeout_ms=int(self.timeout_s * 1000) + 1000, client_id="automem-reader")

    def _scan(self, tps: list[TopicPartition]) -> Iterator[tuple[TopicPartition, int, bytes | None, bytes]]:
        """Every message of some partitions, from the beginning to their end now."""
        with _broker_errors(self.bootstrap, "reading"):
            yield from self._scan_inner(tps)

    def _scan_inner(self, tps: list[TopicPartition]) -> Iterator[tuple[TopicPartition, int, bytes | None, bytes]]:
        consumer = self._consumer()
        try:
            consumer.assign(tps)
            consumer.seek_to_beginning()
            ends = consumer.end_offsets(tps)
            deadline = time.monotonic() + self.timeout_s
            pending = {tp for tp in tps if ends[tp] > 0}
            while pending:
                if time.monotonic() > deadline:
                    raise LogError(f"timed out reading {', '.join(f'{t.topic}:{t.partition}' for t in pending)} from {self.bootstrap}")
                for tp, messages in consumer.poll(timeout_ms=200).items():
                    for m in messages:
                        if m.offset < ends[tp]:
                            yield tp, m.offset, m.key, m.value
                for tp in list(pending):
                    if consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
        finally:
            consumer.close()

    def read_stream(self, stream: str, from_seq: int = 0) -> Iterator[Recorded]:
        tp = self._partition_of(check_stream(stream))
        key = stream.encode("utf-8")
        dedupe = _Dedupe()
        for _tp, offset, mkey, value in self._scan([tp]):
            if mkey != key:
                continue
            for rec in dedupe.records(decode_batch(value or b"", f"{tp.topic}:{tp.partition} offset {offset}"), offset):
                if rec.seq >= from_seq:
                    yield rec
        self._heads[stream] = dedupe.heads.get(stream, 0)

    def head(self, stream: str) -> int:
        if stream not in self._heads:
            for _ in self.read_stream(stream, 1 << 62):
                pass
        return self._heads.get(stream, 0)

    def streams(self, family_name: str) -> list[str]:
        topic = self.topic(family_name)
        with _broker_errors(self.bootstrap, f"looking up {topic}"):
            parts = self.producer.partitions_for(topic) or set()
        keys = {m_key for _tp, _o, m_key, _v in self._scan([TopicPartition(topic, p) for p in sorted(parts)]) if m_key}
        return sorted(k.decode("utf-8") for k in keys if _is_utf8(k))  # a foreign producer's key names no stream

    def subscribe(self, families: tuple[str, ...], group: str | None = None) -> KafkaSubscription:
        return KafkaSubscription(self, families, group)

    def flush(self) -> None:
        """Nothing to do: every append returns once the broker acknowledged it."""

    def grouped(self) -> KafkaLog:
        """Itself: each append is its own acknowledged send, so grouping would only add a loss window."""
        return self

    def lease_folder(self) -> None:
        """None: its episodes may be written on other machines."""

    def snapshots(self) -> None:
        """None: the materializer keeps them in its local store."""

    def close(self) -> None:
        try:
            with _broker_errors(self.bootstrap, "flushing the producer"):
                self.producer.flush(timeout=self.timeout_s)
        finally:
            self.producer.close(timeout=self.timeout_s)
            self.admin.close()

    def __enter__(self) -> KafkaLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_utf8(key: bytes) -> bool:
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _Dedupe:
    """Idempotence on (stream, seq): skip batches that repeat seqs already delivered."""

    def __init__(self) -> None:
        self.heads: dict[str, int] = {}

    def records(self, batch: Batch, offset: int) -> list[Recorded]:
        head = self.heads.get(batch.stream, 0)
        if batch.seq < head:
            return []  # a retry or a writer that lost the race: the first batch at a seq wins
        # (seq > head only when a group member starts mid-stream from committed offsets)
        self.heads[batch.stream] = batch.seq + len(batch.events)
        return [Recorded(offset, batch.stream, batch.seq + i, batch.ts, e) for i, e in enumerate(batch.events)]


_positions = msgspec.msgpack.Encoder()


class KafkaSubscription:
    """Follows topics; the position token maps "topic:partition" to the next offset, and
    the dedupe heads travel with it, so a consumer restored from its own store resumes
    exactly (commit() additionally records offsets in the Kafka group, for lag tools)."""

    def __init__(self, log: KafkaLog, families: tuple[str, ...], group: str | None) -> None:
        self.log = log
        self.group = group
        with _broker_errors(log.bootstrap, "subscribing"):
            self._connect(families)
        self.offsets: dict[str, int] = {}
        self.dedupe = _Dedupe()

    def _connect(self, families: tuple[str, ...]) -> None:
        log, group = self.log, self.group
        self.consumer = KafkaConsumer(  # groups are per prefix, like topics: deployments stay apart
            *[log.topic(f) for f in families], bootstrap_servers=log.servers, group_id=f"{log.prefix}.{group}",
            enable_auto_commit=False, auto_offset_reset="earliest", client_id=f"automem-{group or 'reader'}",
            max_poll_interval_ms=_GROUP_POLL_MS, session_timeout_ms=10_000, heartbeat_interval_ms=3_000,
        ) if group else KafkaConsumer(bootstrap_servers=log.servers, enable_auto_commit=False, client_id="automem-reader")
        if not group:
            tps = [TopicPartition(log.topic(f), p) for f in families
                   for p in sorted(log.producer.partitions_for(log.topic(f)) or ())]
            self.consumer.assign(tps)
            self.consumer.seek_to_beginning()

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[Recorded]:
        out: list[Recorded] = []
        with _broker_errors(self.log.bootstrap, "polling"):
            polled = self.consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        for tp in sorted(polled, key=lambda t: (t.topic, t.partition)):
            for m in polled[tp]:
                self.offsets[f"{tp.topic}:{tp.partition}"] = m.offset + 1
                where = f"{tp.topic}:{tp.partition} offset {m.offset}"
                try:
                    batch = decode_batch(m.value or b"", where)  # None: a tombstone, garbage too
                except LogError as exc:  # a foreign producer wrote here: keep it, name it, go on
                    out.append(Recorded(m.offset, "deadletter/kafka", -1, 0.0, DeadLettered(
                        source=tp.topic, position=f"{tp.partition}:{m.offset}", error=str(exc), raw=m.value or b"")))
                    continue
                out += self.dedupe.records(batch, m.offset)
        return out

    def position(self) -> bytes:
        return _positions.encode({"offsets": self.offsets, "heads": self.dedupe.heads})

    def seek(self, position: bytes) -> None:
        if not position:
            return
        state = msgspec.msgpack.decode(position, type=dict[str, dict[str, int]])
        self.offsets, self.dedupe.heads = dict(state["offsets"]), dict(state["heads"])
        if not self.group:
            for key, offset in self.offsets.items():
                topic, part = key.rsplit(":", 1)
                self.consumer.seek(TopicPartition(topic, int(part)), offset)

    def commit(self) -> None:
        """Best effort: if the group is rebalancing, the records come again to whoever owns
        the partition next, and every automem consumer is idempotent on them."""
        if self.group and self.offsets:
            try:
                self.consumer.commit()
            except (CommitFailedError, RebalanceInProgressError, IllegalGenerationError, UnknownMemberIdError):
                pass

    def lag(self) -> int | None:
        tps = list(self.consumer.assignment())
        if not tps:
            return None  # a group member before its first assignment knows nothing yet
        with _broker_errors(self.log.bootstrap, "measuring lag"):
            ends = self.consumer.end_offsets(tps)
            return sum(max(0, ends[tp] - self.consumer.position(tp)) for tp in tps)

    def close(self) -> None:
        self.consumer.close()
