"""Verbatim examples: the conversation a model was sent, rebuilt by replay, and its cleaned answer.

The log keeps a prompt's digest, not the prompt (the step-0 observation and a step's
error text are not even in the log), so the conversation is rebuilt by replaying the
episode through the same agent code and checked against the recorded digest; an
episode that no longer replays, or a conversation that does not match, gives no example.
"""

from __future__ import annotations

import msgspec

from automem.engine.agent.parser import vocabulary
from automem.engine.agent.prompts import Message, prompt_digest
from automem.engine.dataset.postprocess import Rejection, clean
from automem.engine.dataset.select import Key
from automem.engine.episodes.replay import RecordedEpisode, replay
from automem.engine.log.port import EventLog
from automem.engine.policy.base import PolicyRequest
from automem.schemas.errors import UserError
from automem.schemas.events import LLMCalled

MODEL_ERROR = "model error"
NOT_MEMORY = "not a memory-role answer"
NO_ANSWER = "no recorded answer"
NOT_REPLAYABLE = "episode does not replay"
DIVERGED = "replay diverged"
MISMATCH = "digest mismatch"


class Example(msgspec.Struct, frozen=True):
    """One line of the dataset: chat messages ending with the assistant's cleaned answer."""

    messages: list[Message]


def answers(episode: RecordedEpisode) -> dict[Key, LLMCalled]:
    """The episode's model answers by their place."""
    return {(episode.start.episode, c.step, c.phase, c.turn): c for c in episode.calls}


def target(episode: RecordedEpisode, call: LLMCalled | None) -> str | Rejection:
    """The training target of one recorded answer of the memory role, or why there is none.

    With two models the memory role is the `memory` one; with one model every answer is
    (LOG calls carry the role `agent` there), PLAN answers losing their ACTION."""
    if call is None:
        return Rejection(NO_ANSWER)
    if call.error is not None:
        return Rejection(MODEL_ERROR)
    if "memory" in episode.start.models and call.role != "memory":
        return Rejection(NOT_MEMORY)
    return clean(call.response, vocabulary(episode.structure), call.phase)


def example(call: LLMCalled, request: PolicyRequest, answer: str) -> Example | Rejection:
    """The conversation as sent, less any answer prefix (the recorded answer starts with it), then the answer."""
    sent = list(request.messages)
    if prompt_digest(sent) != call.prompt_digest:
        return Rejection(MISMATCH)
    if sent[-1]["role"] == "assistant":
        sent = sent[:-1]
    return Example(sent + [{"role": "assistant", "content": answer}])


def rebuild(log: EventLog, episode: str, wanted: dict[Key, str]) -> dict[Key, Example | Rejection]:
    """Examples for the answers `wanted` (place -> cleaned answer) of one episode, by replaying it."""
    sent: dict[Key, tuple[LLMCalled, PolicyRequest]] = {}

    def observe(call: LLMCalled, request: PolicyRequest) -> None:
        key = (episode, call.step, call.phase, call.turn)
        if key in wanted:
            sent[key] = (call, request)

    try:
        result = replay(log, episode, observe=observe)
    except UserError:
        return dict.fromkeys(wanted, Rejection(NOT_REPLAYABLE))
    if result.divergence is not None:
        return dict.fromkeys(wanted, Rejection(DIVERGED))
    return {key: example(*sent[key], answer) if key in sent else Rejection(NO_ANSWER) for key, answer in wanted.items()}
