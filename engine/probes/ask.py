"""Asking one probe: the reader's conversation over a read-only memory, as a step machine.

The reader sees the observation at the probe's step, the memory files as they were then
(none in the control arm) and the question; it may look things up with the structure's
read commands (one per turn, answered by the reducer, never changing memory) and answers
with <|ANSWER|>. The last turn is primed with <|ANSWER|>, so every conversation ends in an
answer. Every call and lookup is an event, so a probe run is checked again from the log.
"""

from __future__ import annotations

from typing import Generator

import msgspec

from automem.engine.agent import prompts
from automem.engine.agent.episode import Call, to_op
from automem.engine.agent.parser import parse, vocabulary
from automem.engine.envs import GAMES
from automem.engine.memory import READ_KINDS, MemoryState, apply
from automem.engine.policy.base import Completion, ModelError, Policy, PolicyRequest, storable
from automem.engine.probes.kinds import Probe
from automem.schemas.events import AnyEvent, LLMCalled, MemoryOpApplied
from automem.schemas.structure import Command, MemoryLimits, Structure

PHASE = "probe"
ANSWER = "<|ANSWER|>"
MAX_TOKENS = 48  # an answer is a number, a direction or an item's name
_ANSWER = Command(tag="ANSWER", kind="action", params=("answer",), phases=(PHASE,), help="your answer")
SYSTEM = ("You answer a question about your own earlier play of {game}. Your memory files hold what you wrote "
          "down while playing. Look something up with one command per turn:\n{commands}\nWhen you know the answer, "
          "reply {answer}your answer<|END|>. If memory does not say, give your best guess.")


def reader_structure(structure: Structure) -> Structure:
    """The structure's read commands, allowed in the probe phase, and ANSWER."""
    reads = [Command(tag=c.tag, kind=c.kind, params=c.params, phases=(PHASE,), help=c.help, file=c.file)
             for c in structure.commands if c.kind in READ_KINDS and "plan" in c.phases]
    return msgspec.structs.replace(structure, commands=(*reads, _ANSWER))


def system_prompt(env: str, reader: Structure) -> str:
    return SYSTEM.format(game=GAMES.get(env, env), commands=prompts.command_help(reader, PHASE), answer=ANSWER)


def first_messages(system: str, probe: Probe, observation: str, memory: MemoryState) -> list[prompts.Message]:
    files = prompts.listing(memory) or "(none)"
    user = f"Step {probe.step}. Observation now:\n{observation}\nMemory files: {files}\nQuestion: {probe.question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def read(policy: Policy, reader: Structure, limits: MemoryLimits, system: str, probe: Probe, observation: str,
         memory: MemoryState, turns: int, events: list[AnyEvent]) -> Generator[Call, Completion, str]:
    """The reader's answer ("" for none) after at most `turns` turns; calls and lookups go to `events`.
    A ModelError from the policy propagates after its LLMCalled is recorded."""
    vocab = vocabulary(reader)
    messages = first_messages(system, probe, observation, memory)
    files = tuple(sorted(memory.files))
    for turn in range(turns):
        prime = ANSWER if turn == turns - 1 else ""
        sent = messages + [{"role": "assistant", "content": prime}] if prime else messages
        request = PolicyRequest(messages=tuple(sent), max_tokens=MAX_TOKENS, stop=("<|END|>",), phase=PHASE,
                                files=files)
        digest = prompts.prompt_digest(sent)
        try:
            out = yield Call(policy, request)
        except ModelError as exc:
            events.append(LLMCalled(step=probe.step, phase=PHASE, turn=turn, role="reader", model=policy.name,
                                    prompt_digest=digest, response="", error=str(exc)))
            raise
        text = storable(prime + out.text + (out.stop_hit or ""))
        events.append(LLMCalled(step=probe.step, phase=PHASE, turn=turn, role="reader", model=out.model,
                                prompt_digest=digest, response=text, prompt_tokens=out.prompt_tokens,
                                completion_tokens=out.completion_tokens, latency_ms=out.latency_ms))
        parsed = parse(text, vocab, PHASE)
        if parsed.action is not None:
            return parsed.action
        if not parsed.commands and not parsed.errors:
            return text.strip().split("\n", 1)[0]  # plain words, no command: they are the answer
        results = []
        for index, cmd in enumerate(parsed.commands):
            op = to_op(cmd)
            _, result = apply(memory, op, limits)  # read kinds only: memory is unchanged
            events.append(MemoryOpApplied(step=probe.step, phase=PHASE, turn=turn, op=op, ok=result.ok,
                                          result_digest=prompts.text_digest(result.text), read_versions=result.read,
                                          memory_digest=memory.digest(), index=index))
            results.append(f"[{cmd.tag} {op.path}] {result.text}")
        messages = messages + [{"role": "assistant", "content": text},
                               {"role": "user", "content": prompts.turn_feedback(results, parsed.errors, False, PHASE)}]
    return ""
