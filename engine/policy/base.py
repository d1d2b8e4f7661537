"""The policy port: anything that answers a prompt with text.

A request carries the chat messages for real models and structured hints (phase, valid
actions, memory files) for the seeded random agent, so both sit behind one call.
"""

from __future__ import annotations

from typing import Protocol

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


class ModelError(Exception):
    """The model could not answer after bounded retries; the episode records the cause."""


class BadPolicySpec(UserError):
    pass


class Policy(Protocol):
    name: str  # recorded in EpisodeStarted.models and LLMCalled.model

    def reset(self, seed: int) -> None:
        """Start of an episode: seeded policies reseed here; others ignore it."""
        ...

    def complete(self, request: PolicyRequest) -> Completion:
        """One model call. Raises ModelError (never anything else) when it cannot answer."""
        ...
