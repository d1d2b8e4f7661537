"""Stop strings end a completion before them, the OpenAI convention, on every backend."""

from __future__ import annotations


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, str | None]:
    """`text` up to the earliest stop string (exclusive), and which stop string that was."""
    hits = [(i, s) for s in stop if s and (i := text.find(s)) >= 0]
    if not hits:
        return text, None
    index, hit = min(hits)
    return text[:index], hit
