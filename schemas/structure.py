"""The memory structure document: limits now; prompts and vocabulary join it later.

A structure is data that loop 1 revises. Limits live here rather than in code so an
evolved structure can cap file sizes or allow sub-folders without touching the engine.
"""

from __future__ import annotations

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


DEFAULT_LIMITS = MemoryLimits()
