"""`--policy SPEC` strings to policies.

Parsing is syntax only and imports nothing heavy, so the CLI can reject a bad spec in
milliseconds; `make_policy` imports a backend (torch, openai, vllm) only when asked for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from automem.engine.policy.base import BadPolicySpec, Policy

if TYPE_CHECKING:
    from automem.engine.log.port import EventLog

Kind = Literal["local", "openai", "vllm", "file", "random", "model"]
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


def make_policy(spec: str, log: EventLog | None = None, data: Path | None = None) -> Policy:
    """The policy for `spec`, loaded. A server is pinged first, so that an unreachable
    one is a one-line user error at startup rather than a failed episode. `model:NAME`
    resolves a version from `log`, its adapter under the store's data folder `data`."""
    parsed = parse_spec(spec)
    if parsed.kind == "model":
        return _version_policy(parsed.target, log, data)
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
    from automem.engine.policy.local import default_local_policy, local_folder_policy

    if parsed.target:
        return local_folder_policy(Path(parsed.target).expanduser(), adapter)
    return default_local_policy(adapter)


def _version_policy(name: str, log: EventLog | None, data: Path | None, keep_adapter: bool = False) -> Policy:
    """A model version: its base model with its adapter (sha256 checked before loading)."""
    from automem.engine.models.registry import resolve, verified_adapter

    if log is None or data is None:
        raise BadPolicySpec(f"model:{name} names a version in a store: use it where the command has --data/--bus")
    created = resolve(log, name)
    adapter = verified_adapter(data, created)
    base = parse_spec(created.base)
    if base.kind == "vllm":
        from automem.engine.policy.vllm_backend import VLLMPolicy

        return VLLMPolicy(base.target, adapter)
    if base.kind != "local":
        raise BadPolicySpec(f"model:{name} has base {created.base!r}: only local and vllm bases load adapters; "
                            f"serve it and use openai:{created.name}@URL")
    from automem.engine.policy.convert import ensure_converted
    from automem.engine.policy.local import LocalPolicy

    folder = Path(base.target).expanduser() if base.target else ensure_converted()
    if created.base_identity:  # the adapter was trained on these exact weights, or it is refused
        from automem.engine.training.base import identity

        if identity(folder) != created.base_identity:
            raise BadPolicySpec(f"model:{name} was trained on another {created.base} than {folder} holds now "
                                "(its config or weights differ): restore that base or train the version again")
    return LocalPolicy(folder, f"model:{created.name}", adapter, keep_adapter=keep_adapter)


def make_policies(spec: str, memory_spec: str | None, log: EventLog | None = None,
                  data: Path | None = None) -> tuple[Policy, Policy | None]:
    """The action model and the memory model. A memory version over the very base model the
    action role names is loaded once: the adapter stays unmerged, on for the memory role and
    off for the action role (no second copy of the weights)."""
    if memory_spec is None:
        return make_policy(spec, log, data), None
    parsed, memory = parse_spec(spec), parse_spec(memory_spec)
    if memory.kind == "model" and parsed.kind in ("local", "vllm") and not parsed.adapter:
        from automem.engine.models.registry import resolve

        if log is not None and _same_model(resolve(log, memory.target).base, spec):
            shared = _version_policy(memory.target, log, data, keep_adapter=True)
            view = getattr(shared, "without_adapter")
            return view(_base_name(spec)), shared
    return make_policy(spec, log, data), make_policy(memory_spec, log, data)


def _same_model(a: str, b: str) -> bool:
    """Whether two specs name the same model (local folders compared as resolved paths)."""
    x, y = parse_spec(a), parse_spec(b)
    if (x.kind, x.adapter, y.adapter) != (y.kind, "", "") or x.kind not in ("local", "vllm"):
        return False
    if x.kind == "local" and x.target and y.target:
        return Path(x.target).expanduser().resolve() == Path(y.target).expanduser().resolve()
    return x.target == y.target


def _base_name(spec: str) -> str:
    """The name the base alone records, as if it had been loaded alone."""
    parsed = parse_spec(spec)
    if parsed.kind == "vllm":
        return f"vllm:{parsed.target}"
    if parsed.target:
        return f"local:{Path(parsed.target).expanduser().resolve().name}"
    from automem.engine.policy.convert import MODEL_ID

    return MODEL_ID
