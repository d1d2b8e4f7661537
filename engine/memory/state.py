"""Memory state: an immutable mapping of file name to content with content-hash versions."""

from __future__ import annotations

import hashlib

import msgspec


def line_count(content: str) -> int:
    """Lines as the model sees them (LIST, prompts): a last line without newline counts."""
    return len(content.splitlines())


def content_version(content: str) -> str:
    """A file version is the hash of its content: equal content, equal version."""
    return hashlib.blake2b(content.encode("utf-8"), digest_size=8).hexdigest()


class MemFile(msgspec.Struct, frozen=True, array_like=True):
    content: str
    version: str


def _digest(files: dict[str, MemFile]) -> str:
    # name \0 version \1 for each file in name order, hashed in one call (versions are ASCII hex)
    text = "".join([f"{name}\x00{files[name].version}\x01" for name in sorted(files)])
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class MemoryState(msgspec.Struct, frozen=True):
    """Files by name. Immutable by convention: build new states with `MemoryState.of`.

    The digest is computed once, when the state is made, because the runtime asks for it
    after every op and every step while most ops (reads) make no new state.
    """

    files: dict[str, MemFile] = {}
    fingerprint: str = ""  # derived in __post_init__ (also on decode): a stored value is never trusted

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "fingerprint", _digest(self.files))

    @classmethod
    def of(cls, files: dict[str, MemFile]) -> MemoryState:
        return cls(files)

    @classmethod
    def from_files(cls, files: dict[str, str]) -> MemoryState:
        return cls.of({name: MemFile(text, content_version(text)) for name, text in sorted(files.items())})

    def contents(self) -> dict[str, str]:
        return {name: self.files[name].content for name in sorted(self.files)}

    def versions(self) -> dict[str, str]:
        return {name: self.files[name].version for name in sorted(self.files)}

    def digest(self) -> str:
        """Deterministic digest of the whole memory: independent of insertion order."""
        return self.fingerprint


EMPTY = MemoryState()
