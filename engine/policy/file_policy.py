"""Scripted responses from a JSONL file, for tests and for re-running recorded answers.

Lines are `{"text": ...}`: one cursor for the whole run, every model call takes the next
line across episodes, so a file scripts a whole `automem run` in call order. Lines that
all carry `"seed": N` script each episode apart: an episode takes its seed's lines in
order, so such a file gives the same episodes however they are interleaved (any
--concurrency or --workers).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from automem.engine.policy.base import (
    BadPolicySpec,
    Completion,
    ModelError,
    PolicyRequest,
)


class _Line(msgspec.Struct):
    text: str
    seed: int | None = None


class FilePolicy:
    """Answers each call with the next line of a JSONL file (of the episode's seed, when keyed)."""

    def __init__(self, path: Path) -> None:
        self.name = f"file:{path.name}"
        self.by_seed = _read(path)
        self._responses = self.by_seed.get(None, [])
        self._next = 0

    @property
    def keyed(self) -> bool:
        """Whether lines name their episode's seed (then interleaving cannot change an episode)."""
        return None not in self.by_seed

    def for_episode(self, seed: int) -> FilePolicy:
        """Keyed: a cursor over the seed's own lines. Unkeyed: deliberately the one run-wide cursor."""
        if not self.keyed:
            return self
        session = FilePolicy.__new__(FilePolicy)
        session.name, session.by_seed, session._next = self.name, self.by_seed, 0
        session._responses = self.by_seed.get(seed, [])
        return session

    def complete(self, request: PolicyRequest) -> Completion:
        if self._next >= len(self._responses):
            raise ModelError(f"file policy exhausted after {len(self._responses)} responses")
        text = self._responses[self._next]
        self._next += 1
        return Completion(text=text, model=self.name)


def _read(path: Path) -> dict[int | None, list[str]]:
    """All responses by seed (None: unkeyed), checked up front so a bad file fails before any episode starts."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise BadPolicySpec(f"cannot read --policy file:{path}: {exc.strerror}") from exc
    decoder = msgspec.json.Decoder(_Line)
    responses: dict[int | None, list[str]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = decoder.decode(line)
        except msgspec.ValidationError as exc:
            raise BadPolicySpec(
                f'{path} line {number}: expected {{"text": "..."}} or {{"seed": N, "text": "..."}} per line: {exc}'
            ) from exc
        except msgspec.DecodeError as exc:  # ValidationError's parent: check the subclass first
            raise BadPolicySpec(f"{path} line {number}: not JSON: {exc}") from exc
        except UnicodeDecodeError as exc:  # msgspec's error for invalid UTF-8 inside a string
            raise BadPolicySpec(f"{path} line {number}: not UTF-8 ({exc.reason} in a string): "
                                "save the file as UTF-8") from exc
        if responses and (parsed.seed is None) != (None in responses):
            raise BadPolicySpec(f'{path} line {number}: either every line names its "seed" or none does')
        responses.setdefault(parsed.seed, []).append(parsed.text)
    return responses
