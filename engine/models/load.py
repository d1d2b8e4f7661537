"""`model:NAME` (or `model:promoted`) to a policy: the version resolved in the log, its base
model checked, its adapter verified against its recorded sha256, then loaded. Every other
spec is the policy package's `make_policy`."""

from __future__ import annotations

from pathlib import Path

from automem.engine.log.port import EventLog
from automem.engine.models.registry import resolve, verified_adapter
from automem.engine.policy.adapters import base_identity
from automem.engine.policy.base import BadPolicySpec, Policy
from automem.engine.policy.convert import MODEL_ID, ensure_converted
from automem.engine.policy.local import LocalPolicy
from automem.engine.policy.spec import make_policy, outside_store, parse_spec
from automem.engine.policy.vllm_backend import VLLMPolicy


def load_policy(spec: str, log: EventLog | None = None, data: Path | None = None) -> Policy:
    """The policy for `spec`; `model:NAME` resolves a version from `log`, its adapter under the
    store's data folder `data`."""
    parsed = parse_spec(spec)
    if parsed.kind == "model":
        return _version_policy(parsed.target, log, data)
    return make_policy(spec)


def _version_policy(name: str, log: EventLog | None, data: Path | None, keep_adapter: bool = False,
                    engine: str = "") -> LocalPolicy | VLLMPolicy:
    """A model version: its base model with its adapter (sha256 checked before loading). With
    `engine` a `vllm:FOLDER` holding the very weights the version was trained on, vLLM serves it
    (the adapter as a LoRARequest), else transformers does."""
    if log is None or data is None:
        raise outside_store(name)
    created = resolve(log, name)
    adapter = verified_adapter(data, created)
    base = parse_spec(created.base)
    if engine:
        return VLLMPolicy(parse_spec(engine).target, adapter, name=f"model:{created.name}")
    if base.kind == "vllm":
        return VLLMPolicy(base.target, adapter, name=f"model:{created.name}")
    if base.kind != "local":
        raise BadPolicySpec(f"model:{name} has base {created.base!r}: only local and vllm bases load adapters; "
                            f"serve it and use openai:{created.name}@URL")
    folder = Path(base.target).expanduser() if base.target else ensure_converted()
    if not folder.is_dir():
        raise BadPolicySpec(f"model:{name} is an adapter over {created.base}, whose folder {folder} is gone: restore "
                            "the base model there, or train the version again over another --base")
    if created.base_identity and base_identity(folder) != created.base_identity:  # trained on these weights, or refused
        raise BadPolicySpec(f"model:{name} was trained on another {created.base} than {folder} holds now "
                            "(its config or weights differ): restore that base or train the version again")
    return LocalPolicy(folder, f"model:{created.name}", adapter, keep_adapter=keep_adapter)


def make_policies(spec: str, memory_spec: str | None, log: EventLog | None = None,
                  data: Path | None = None) -> tuple[Policy, Policy | None]:
    """The action model and the memory model. A memory version over the very base model the
    action role names is loaded once: the adapter stays unmerged, on for the memory role and
    off for the action role (no second copy of the weights; on vLLM, one engine with a
    LoRARequest for the memory role's calls only)."""
    if memory_spec is None:
        return load_policy(spec, log, data), None
    parsed, memory = parse_spec(spec), parse_spec(memory_spec)
    if memory.kind == "model" and parsed.kind in ("local", "vllm") and not parsed.adapter and log is not None:
        created = resolve(log, memory.target)
        if parsed.kind == "vllm" and _holds_base(parsed.target, created.base_identity):
            shared = _version_policy(memory.target, log, data, engine=spec)
            return shared.without_adapter(_base_name(spec)), shared
        if _same_model(created.base, spec):
            shared = _version_policy(memory.target, log, data, keep_adapter=True)
            return shared.without_adapter(_base_name(spec)), shared
    return load_policy(spec, log, data), load_policy(memory_spec, log, data)


def _holds_base(target: str, identity: str) -> bool:
    """Whether the folder `target` holds the weights a version was trained on (a Hub id never
    does here: its identity is that of a snapshot folder)."""
    folder = Path(target).expanduser()
    return bool(identity) and folder.is_dir() and base_identity(folder) == identity


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
    return MODEL_ID
