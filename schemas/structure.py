"""The memory structure document: prompts, seeded files, command vocabulary, budgets, limits.

A structure is data that loop 1 revises. Limits live here rather than in code so an
evolved structure can cap file sizes or allow sub-folders without touching the engine.
"""

from __future__ import annotations

import hashlib

import msgspec


class MemoryLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds the memory reducer enforces; every breach is an error result, never a raise."""

    max_file_bytes: int = 16_384
    max_files: int = 32
    max_name_len: int = 64
    name_pattern: str = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
    allow_subdirs: bool = False
    max_read_chars: int = 4_000
    max_search_hits: int = 20
    max_tail_lines: int = 50
    read_only: tuple[str, ...] = ()
    # At most this many lines per file (0: no cap): a write that makes a file longer is
    # followed by an engine-made `trim` op dropping its oldest lines (phase "cap").
    max_file_lines: int = 0


DEFAULT_LIMITS = MemoryLimits()


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """One command of the vocabulary: its tag, the reducer op it maps to, where it is allowed.

    `params` names the `|`-separated fields of the body; the last one takes the rest of
    the text, so content may itself contain `|`. A param named `file` is the op's path;
    a command without one acts on `file` (e.g. UPSERT_MAP on the map file).
    """

    tag: str
    kind: str  # a reducer kind, or "done" / "action"
    params: tuple[str, ...] = ()
    phases: tuple[str, ...] = ("log", "plan")
    help: str = ""
    file: str = ""


PHASES = ("log", "plan")  # the model's phases; a command runs in some of them
# Phases of ops the engine makes, never a decision of the model's: the seeded files,
# derived files rewritten after each step, and line-cap trims.
ENGINE_PHASES = frozenset({"init", "derived", "cap"})
DERIVED_FIELDS = ("position", "vitals", "inventory", "achievements", "level")


class DerivedFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file the engine rewrites after every step from the step's env facts (read-only to
    the model): `shows` picks the facts, out of DERIVED_FIELDS, in its order."""

    name: str
    shows: tuple[str, ...]


class Structure(msgspec.Struct, frozen=True, kw_only=True):
    """The memory structure loop 1 revises: prompts, files, vocabulary, budgets, limits."""

    env: str
    name: str
    log_system: str
    plan_system: str
    initial_files: dict[str, str]
    commands: tuple[Command, ...]
    max_log_turns: int = 3
    max_plan_turns: int = 3
    max_tokens: int = 160
    fallback_action: str = "Noop"
    recent_steps: int = 3  # how many past (action, outcome) lines the prompt repeats
    # Answer prefixes the model continues (e.g. "<|ACTION|>"): tiny models then only have to
    # name an action or write a line; "" leaves the whole answer to the model.
    log_prime: str = ""
    plan_prime: str = ""
    limits: MemoryLimits = DEFAULT_LIMITS
    derived: tuple[DerivedFile, ...] = ()
    # The prefix of every PLAN turn but the last (which gets plan_prime), e.g. "<|SEARCH|>*|":
    # a tiny model then looks memory up before it acts. Encoded only when set (see below).
    plan_lookup_prime: str = ""


def agent_limits(structure: Structure) -> MemoryLimits:
    """The limits the model's commands run under: derived files are the engine's, read-only to it."""
    if not structure.derived:
        return structure.limits
    extra = tuple(d.name for d in structure.derived if d.name not in structure.limits.read_only)
    return msgspec.structs.replace(structure.limits, read_only=structure.limits.read_only + extra)


_structure_encoder = msgspec.json.Encoder()
_structure_decoder = msgspec.json.Decoder(Structure)


_LATER_FIELDS = ("plan_lookup_prime",)  # fields added after structures were stored: left out when unset


def encode_structure(structure: Structure) -> bytes:
    """The document, with fields added later left out while unset: a structure that does not
    use them keeps the bytes, and so the version, it had before they existed."""
    if any(getattr(structure, name) for name in _LATER_FIELDS):
        return _structure_encoder.encode(structure)
    fields = msgspec.structs.asdict(structure)
    for name in _LATER_FIELDS:
        del fields[name]
    return _structure_encoder.encode(fields)


def decode_structure(data: bytes) -> Structure:
    return _structure_decoder.decode(data)


def structure_version(structure: Structure) -> str:
    """A structure's version names its env and name plus a 96-bit hash of its whole document
    (collisions stay negligible over any number of proposals). Versions made with the
    earlier 32-bit hash stay valid names: the log keeps each document under its name."""
    digest = hashlib.blake2b(encode_structure(structure), digest_size=12).hexdigest()
    return f"{structure.env}-{structure.name}-{digest}"
