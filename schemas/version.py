"""The installed automem's version, from its package metadata (pyproject.toml is the one source)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def engine_version() -> str:
    try:
        return version("automem")
    except PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


ENGINE_VERSION = engine_version()
