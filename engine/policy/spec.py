"""`--policy SPEC` strings to policies.

Parsing is syntax only and imports nothing heavy, so the CLI can reject a bad spec in
milliseconds; `make_policy` imports a backend (torch, openai, vllm) only when asked for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeGuard, get_args

from automem.engine.policy.base import BadPolicySpec, Policy
from automem.engine.policy.local import default_local_policy, local_folder_policy

Kind = Literal["local", "openai", "vllm", "file", "random", "model"]
KINDS: tuple[Kind, ...] = get_args(Kind)


def _is_kind(text: str) -> TypeGuard[Kind]:
    return text in KINDS
FORMS = ("local[+adapter:PATH], local:PATH[+adapter:PATH], openai:MODEL@URL, vllm:MODEL[+adapter:PATH], "
         "model:NAME (a trained version, or model:promoted), file:PATH or random")
ADAPTER = "+adapter:"
_OPENAI = re.compile(r"(?P<model>.+?)@(?P<url>https?://\S+)")  # the URL may hold an '@' itself


@dataclass(frozen=True)
class PolicySpec:
    kind: Kind
    target: str = ""  # local: model folder ("" = the bundled model); openai, vllm: model; file: path
    adapter: str = ""  # LoRA adapter folder (local, vllm)
    base_url: str = ""  # openai


def parse_spec(spec: str) -> PolicySpec:
    bad = BadPolicySpec(f"bad --policy {spec!r}: use {FORMS}")
    base, with_adapter, adapter = spec.partition(ADAPTER)
    kind, colon, rest = base.partition(":")
    if with_adapter and (kind not in ("local", "vllm") or not adapter):
        raise bad
    if not _is_kind(kind):
        raise bad
    if kind in ("local", "random") and not colon:
        return PolicySpec(kind, adapter=adapter)
    if not rest:
        raise bad
    if kind in ("local", "vllm"):
        return PolicySpec(kind, target=rest, adapter=adapter)
    if kind in ("file", "model"):
        return PolicySpec(kind, target=rest)
    if kind == "openai" and (match := _OPENAI.fullmatch(rest)):
        return PolicySpec("openai", target=match["model"], base_url=match["url"])
    raise bad


def outside_store(name: str) -> BadPolicySpec:
    """`model:NAME` where no store is open: versions live in one (`automem.engine.models.load`)."""
    return BadPolicySpec(f"model:{name} names a version in a store: use it where the command has --data/--bus")


def make_policy(spec: str) -> Policy:
    """The policy for `spec`, loaded. A server is pinged first, so that an unreachable
    one is a one-line user error at startup rather than a failed episode. `model:NAME`
    needs a store: `automem.engine.models.load.load_policy` loads it."""
    parsed = parse_spec(spec)
    if parsed.kind == "model":
        raise outside_store(parsed.target)
    adapter = Path(parsed.adapter).expanduser() if parsed.adapter else None
    if parsed.kind == "random":
        from automem.engine.policy.random_policy import RandomPolicy

        return RandomPolicy()
    if parsed.kind == "file":
        from automem.engine.policy.file_policy import FilePolicy

        return FilePolicy(Path(parsed.target).expanduser())
    if parsed.kind == "openai":
        from automem.engine.policy.openai_compat import OpenAIPolicy

        policy = OpenAIPolicy(parsed.target, parsed.base_url)
        policy.check_reachable()
        return policy
    if parsed.kind == "vllm":
        from automem.engine.policy.vllm_backend import VLLMPolicy

        return VLLMPolicy(parsed.target, adapter)
    if parsed.target:
        return local_folder_policy(Path(parsed.target).expanduser(), adapter)
    return default_local_policy(adapter)
