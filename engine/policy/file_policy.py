"""Scripted responses from a JSONL file, for tests and for re-running recorded answers.

The file is one cursor for the whole run: every model call takes the next line, across
episodes (reset does not rewind), so a file scripts a whole `automem run` in call order.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from automem.engine.policy.base import BadPolicySpec, Completion, ModelError, PolicyRequest


class _Line(msgspec.Struct):
    text: str


class FilePolicy:
    """Answers each call with the next `{"text": ...}` line of a JSONL file."""

    def __init__(self, path: Path) -> None:
        self.name = f"file:{path.name}"
        self._responses = _read(path)
        self._next = 0

    def reset(self, seed: int) -> None:
        """Deliberately no rewind: the file is consumed in order across the whole run."""

    def complete(self, request: PolicyRequest) -> Completion:
        if self._next >= len(self._responses):
            raise ModelError(f"file policy exhausted after {len(self._responses)} responses")
        text = self._responses[self._next]
        self._next += 1
        return Completion(text=text, model=self.name)


def _read(path: Path) -> list[str]:
    """All responses, checked up front so a bad file fails before any episode starts."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise BadPolicySpec(f"cannot read --policy file:{path}: {exc.strerror}") from exc
    decoder = msgspec.json.Decoder(_Line)
    responses = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            responses.append(decoder.decode(line).text)
        except msgspec.ValidationError as exc:
            raise BadPolicySpec(
                f'{path} line {number}: expected {{"text": "..."}} per line: {exc}'
            ) from exc
        except msgspec.DecodeError as exc:  # ValidationError's parent: check the subclass first
            raise BadPolicySpec(f"{path} line {number}: not JSON: {exc}") from exc
        except UnicodeDecodeError as exc:  # msgspec's error for invalid UTF-8 inside a string
            raise BadPolicySpec(f"{path} line {number}: not UTF-8 ({exc.reason} in a string): "
                                "save the file as UTF-8") from exc
    return responses
