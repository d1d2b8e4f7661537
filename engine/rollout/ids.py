"""Every id a rollout mints, in one place: episode, request and worker ids.

Episode and request ids start with what a reader recognises (`<env>-s<seed>`); a random
token makes a fresh one unique, a digest of what decides an episode makes a derived one
the same on every start (so a driver started again finds what it asked for).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket


def _fresh(env: str, seed: int) -> str:
    return f"{env}-s{seed}-{secrets.token_hex(4)}"


def new_episode_id(env: str, seed: int) -> str:
    """An episode played in this process: `<env>-s<seed>-<8 hex>`."""
    return _fresh(env, seed)


def new_request_id(env: str, seed: int) -> str:
    """A rollout request published by `automem submit`: `<env>-s<seed>-<8 hex>`."""
    return _fresh(env, seed)


def request_digest(key: bytes) -> str:
    """12 hex digits of what decides a derived request's episode (its encoded key)."""
    return hashlib.sha256(key).hexdigest()[:12]


def derived_request_id(env: str, seed: int, digest: str, attempt: int) -> str:
    """A driver's request for one seed: `<env>-s<seed>-<digest>-r<attempt>`, the same on every start."""
    return f"{env}-s{seed}-{digest}-r{attempt}"


def attempt_episode_id(request_id: str, attempt: int) -> str:
    """A worker's episode for a request's attempt: `<request>-a<attempt>`."""
    return f"{request_id}-a{attempt}"


def worker_id() -> str:
    """A worker that was given no id: `<host>-<pid>`."""
    return f"{socket.gethostname()}-{os.getpid()}"
