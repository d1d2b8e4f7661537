"""Every id the engine mints, in one place: episode, request, worker and fork ids, and the
name loop 1 gives a proposal it could not read.

Episode and request ids start with what a reader recognises (`<env>-s<seed>`); a random
token makes a fresh one unique, a digest of what decides an episode makes a derived one
the same on every start (so a driver started again finds what it asked for). Ids that are
a digest of their content (datasets, model versions, structures, loops, scorer versions)
are computed beside the encoding they digest.
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


def fork_id(parent: str, step: int, n: int) -> str:
    """The n-th counterfactual fork of `parent` before `step`: `<parent>-fork<step>-<n>`."""
    return f"{parent}-fork{step}-{n}"


INVALID = "invalid-"


def invalid_proposal_id(reason: str) -> str:
    """The version recorded for a reviewer answer that held no valid structure: `invalid-<12 hex
    of why>`, so the same failure is one rejection however often it recurs."""
    return INVALID + hashlib.sha256(reason.encode()).hexdigest()[:12]


def is_invalid_proposal(version: str) -> bool:
    return version.startswith(INVALID)
