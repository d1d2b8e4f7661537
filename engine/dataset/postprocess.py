"""The paper's fixed post-processing of a memory answer, before it becomes a training target.

The cleaned answer is always a prefix of the recorded one (so it stays verbatim): it ends
where the project's parser has seen every memory command the answer issued (and, in LOG,
its DONE). That one cut drops what follows DONE, the ACTION of a PLAN answer (the parser
stops at it, so the memory model never learns to commit actions) and the prose after the
last command's terminator. Answers with no memory command, or still holding a code
fence or a game action, are rejected.
"""

from __future__ import annotations

import msgspec

from automem.engine.agent.parser import parse
from automem.schemas.structure import Command


class Rejection(msgspec.Struct, frozen=True):
    reason: str


NO_COMMAND = "no memory command"
CODE_FENCE = "code fence"
ACTION = "game action in a memory answer"


def clean(response: str, vocab: dict[str, Command], phase: str) -> str | Rejection:
    """The training target made from one recorded answer of `phase`, or why there is none."""
    whole = parse(response, vocab, phase)
    if not whole.commands:
        return Rejection(NO_COMMAND)
    answer = response
    # every tag ends with ">": the first such cut that parses to the same commands is the answer
    for end in (i + 1 for i, ch in enumerate(response) if ch == ">"):
        part = parse(response[:end], vocab, phase)
        if part.commands == whole.commands and part.done == whole.done:
            answer = response[:end]
            break
    if "```" in answer:
        return Rejection(CODE_FENCE)
    if parse(answer, vocab, "plan").action is not None:  # a LOG answer naming an action it could not take
        return Rejection(ACTION)
    return answer
