"""Stream ids and the stream families that become Kafka topics."""

from __future__ import annotations

FAMILIES = ("ep", "structure", "model", "score", "dataset", "rollout", "deadletter", "loop", "probe")


def episode_stream(episode: str) -> str:
    return f"ep/{episode}"


def structure_stream(env: str) -> str:
    return f"structure/{env}"


def model_stream(name: str) -> str:
    return f"model/{name}"


def role_stream(role: str) -> str:
    """A role's promotion history (model/role-memory), beside the versions' own streams."""
    return model_stream(f"role-{role}")


def score_stream(episode: str) -> str:
    """The scores of one episode's decisions, every scorer version side by side."""
    return f"score/{episode}"


def dataset_stream(dataset: str) -> str:
    return f"dataset/{dataset}"


def rollout_stream(request_id: str) -> str:
    return f"rollout/{request_id}"


def deadletter_stream(consumer: str) -> str:
    """Records a consumer could not decode, kept for a person to look at."""
    return f"deadletter/{consumer}"


def loop_stream(loop: str) -> str:
    """The progress of one `automem loop`: settings, iterations, stages."""
    return f"loop/{loop}"


def probe_stream(episode: str) -> str:
    """The memory probes asked of one episode, every probe run side by side."""
    return f"probe/{episode}"


def family(stream: str) -> str:
    """The family (topic) of a stream id: the part before the first slash."""
    return stream.split("/", 1)[0]


def id_of(stream: str, family_: str) -> str:
    """The id a stream of `family_` was built from: the inverse of its builder above."""
    head, _, rest = stream.partition("/")
    if head != family_ or not rest:
        raise ValueError(f"not a {family_} stream: {stream!r}")
    return rest


def episode_of(stream: str) -> str:
    """The episode of an `ep/` stream (the inverse of `episode_stream`)."""
    return id_of(stream, "ep")


def request_of(stream: str) -> str:
    """The rollout request of a `rollout/` stream (the inverse of `rollout_stream`)."""
    return id_of(stream, "rollout")


def check_stream(stream: str) -> str:
    """Refuse stream ids the backends cannot key: empty, NUL, unknown family."""
    if not stream or "\x00" in stream or "/" not in stream:
        raise ValueError(f"bad stream id {stream!r}: expected FAMILY/ID, e.g. ep/abc123")
    if family(stream) not in FAMILIES:
        raise ValueError(f"unknown stream family in {stream!r}: one of {', '.join(FAMILIES)}")
    return stream
