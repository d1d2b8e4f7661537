"""The policy port: anything that answers a prompt with text.

A request carries the chat messages for real models and structured hints (phase, valid
actions, memory files) for the seeded random agent, so both sit behind one call.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import msgspec

from automem.schemas.errors import UserError


class PolicyRequest(msgspec.Struct, frozen=True, kw_only=True):
    # [{"role": "system"|"user"|"assistant", "content": ...}]; a final assistant message is
    # a prefix the model continues (the returned text is only the continuation).
    messages: tuple[dict[str, str], ...]
    max_tokens: int = 256
    stop: tuple[str, ...] = ()  # generation ends at one of these; the text stops before it
    phase: str = ""  # "log" | "plan" | "review" ...
    valid_actions: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    # Sampling: temperature 0 is greedy; otherwise draw with `seed` (the agent derives it
    # from the episode seed and the call's place, so a sampled episode still reproduces).
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    stop_hit: str | None = None  # the stop string that ended generation, when the backend knows


def storable(text: str) -> str:
    """A model's text as valid UTF-8 (a lone surrogate becomes "?"): whatever a model
    returns is recorded, shown and encoded, and none of that may fail on its bytes."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


class ModelError(Exception):
    """The model could not answer after bounded retries; the episode records the cause."""


class BadPolicySpec(UserError):
    pass


class Policy(Protocol):
    name: str  # recorded in EpisodeStarted.models and LLMCalled.model

    def for_episode(self, seed: int) -> Policy:
        """This policy's state for one episode (a seeded generator, a cursor, a prefix cache),
        sharing whatever is heavy (weights, clients): episodes interleaved in one process then
        each see what they would alone. Stateless backends return self."""
        ...

    def complete(self, request: PolicyRequest) -> Completion:
        """One model call. Raises ModelError (never anything else) when it cannot answer."""
        ...


class Batching(Protocol):
    """A backend that answers the calls of several episodes at once (one decode batch, or
    requests in flight together). Calls whose policies share a `batch_key` go as one batch."""

    batch_key: object

    def complete_batch(self, calls: Sequence[tuple[Policy, PolicyRequest]]) -> list[Completion | ModelError]:
        """One answer or error per (episode policy, request), in order: one call failing
        fails only its own item."""
        ...


def complete_all(calls: Sequence[tuple[Policy, PolicyRequest]]) -> list[Completion | ModelError]:
    """Answers to pending calls of several episodes: calls to one batching backend go as one
    batch, the others one by one, in order (groups in order of first appearance)."""
    groups: dict[object, list[int]] = {}
    for i, (policy, _) in enumerate(calls):
        key = getattr(policy, "batch_key", None)
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    out: list[Completion | ModelError | None] = [None] * len(calls)
    for members in groups.values():
        first = calls[members[0]][0]
        if len(members) > 1 and hasattr(first, "complete_batch"):
            answers = first.complete_batch([calls[i] for i in members])  # type: ignore[attr-defined]
        else:
            answers = [answer(*calls[i]) for i in members]
        for i, reply in zip(members, answers):
            out[i] = reply
    return out  # type: ignore[return-value]


def answer(policy: Policy, request: PolicyRequest) -> Completion | ModelError:
    """One call answered by its policy: a ModelError is handed back, not raised."""
    try:
        return policy.complete(request)
    except ModelError as exc:
        return exc
