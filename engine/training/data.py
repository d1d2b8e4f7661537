"""Chat examples -> token ids and labels, with loss on the final answer only.

The prompt is everything up to the final assistant message, rendered by the base's own
chat template with the generation prompt, exactly as the local policy renders it at
inference; the target is what the template puts after it for the final answer: the
answer (the post-processed memory commands) and the end-of-turn token (`<|im_end|>` for
SmolLM2 and Qwen), so the specialist learns to stop, but not the whitespace after it.
Prompt and target are tokenized apart and joined, so the answer's tokens are the ones the
model would generate after that prompt. Labels are -100 (ignored) on every prompt token,
earlier assistant turns of a multi-turn conversation included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from automem.engine.agent.prompts import Message

IGNORE = -100  # the label torch's cross-entropy skips


class Tokenized(msgspec.Struct, frozen=True):
    input_ids: list[int]
    labels: list[int]

    @property
    def targets(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


class Prepared(msgspec.Struct, frozen=True):
    examples: list[Tokenized]
    too_long: int  # examples over max_length, left out
    unrenderable: int  # examples whose template does not end the conversation with the answer as given


def split(tokenizer: Any, messages: list[Message]) -> tuple[str, str] | None:
    """(prompt, target) as text; None when the template changes the answer (it must appear verbatim)."""
    answer = messages[-1]["content"]
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt) or not full[len(prompt):].startswith(answer):
        return None
    return prompt, full[len(prompt):].rstrip()


def tokenize(tokenizer: Any, messages: list[Message]) -> Tokenized | None:
    parts = split(tokenizer, messages)
    if parts is None:
        return None
    prompt, target = (tokenizer(text, add_special_tokens=False)["input_ids"] for text in parts)
    return Tokenized(input_ids=[*prompt, *target], labels=[IGNORE] * len(prompt) + list(target))


def prepare(tokenizer: Any, conversations: Iterable[list[Message]], max_length: int) -> Prepared:
    kept: list[Tokenized] = []
    too_long = unrenderable = 0
    for messages in conversations:
        out = tokenize(tokenizer, messages)
        if out is None:
            unrenderable += 1
        elif len(out.input_ids) > max_length:
            too_long += 1
        else:
            kept.append(out)
    return Prepared(kept, too_long, unrenderable)


def is_conversation(doc: object) -> bool:
    """A dataset line: messages with string roles and contents, ending with an assistant answer."""
    messages = doc.get("messages") if isinstance(doc, dict) else None
    return (isinstance(messages, list) and len(messages) >= 2
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in messages)
            and messages[-1]["role"] == "assistant")
