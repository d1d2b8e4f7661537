"""Model versions as the log tells them: created (on `model/<name>`), evaluated (same
stream) and promoted (`model/role-<role>`: one ordered history per role, so "the promoted
version" means the same on every backend and two promotions cannot race unseen)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from automem.engine.log.port import EventLog
from automem.engine.policy.adapters import CONFIG, WEIGHTS, adapter_digest, files_digest
from automem.schemas.errors import UserError
from automem.schemas.events import (
    ModelVersionCreated,
    ModelVersionEvaluated,
    ModelVersionPromoted,
)
from automem.schemas.streams import model_stream, role_stream

PROMOTED = "promoted"  # `model:promoted`: the version promoted last for the memory role


class Version(msgspec.Struct, kw_only=True):
    """One version as `automem models --json` lists it."""

    model_version: str
    base: str
    dataset: str
    loss: float
    tokens: int
    steps: int
    device: str
    distill: bool
    adapter: str
    sha256: str
    params: dict[str, str]
    evaluations: list[ModelVersionEvaluated] = []
    promotions: list[ModelVersionPromoted] = []


def created(log: EventLog) -> list[ModelVersionCreated]:
    """Every version in the log, in the order they were written."""
    found = [(r.offset, r.event) for s in log.streams("model") for r in log.read_stream(s)
             if isinstance(r.event, ModelVersionCreated)]
    return [e for _, e in sorted(found, key=lambda f: f[0])]


def versions(log: EventLog) -> dict[str, Version]:
    """Every version with its evaluations (on its stream) and promotions (on its role's), oldest first."""
    out: dict[str, Version] = {}
    for v in created(log):
        out[v.name] = Version(
            model_version=v.name, base=v.base, dataset=v.dataset, loss=v.loss, tokens=v.tokens, steps=v.steps,
            device=v.device, distill=v.distill, adapter=v.adapter, sha256=v.sha256, params=v.params,
            evaluations=[r.event for r in log.read_stream(model_stream(v.name)) if isinstance(r.event, ModelVersionEvaluated)])
    for promotion in promotions(log):
        if promotion.name in out:
            out[promotion.name].promotions.append(promotion)
    return out


def promotions(log: EventLog, role: str = "memory") -> list[ModelVersionPromoted]:
    return [r.event for r in log.read_stream(role_stream(role)) if isinstance(r.event, ModelVersionPromoted)]


def promoted(log: EventLog, role: str = "memory") -> str | None:
    """The version promoted last for `role`, or None."""
    history = promotions(log, role)
    return history[-1].name if history else None


def resolve(log: EventLog, name: str) -> ModelVersionCreated:
    """The version `name` names (or the promoted one), or a one-line error saying what exists."""
    if name == PROMOTED:
        found = promoted(log)
        if found is None:
            raise UserError("no model version is promoted yet: `automem eval --model NAME ... --promote` promotes one")
        name = found
    for rec in log.read_stream(model_stream(name)):
        if isinstance(rec.event, ModelVersionCreated):
            return rec.event
    known = ", ".join(v.name for v in created(log)) or "none yet: `automem train` makes one"
    raise UserError(f"unknown model version {name!r}: known versions are {known}")


def verified_adapter(data: Path, created: ModelVersionCreated) -> Path:
    """The version's adapter folder, after checking its weights against the event's sha256."""
    folder = data / created.adapter
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise UserError(f"the adapter of {created.name} is missing at {folder}: restore it, or train the version again")
    digest = adapter_digest(folder)
    if digest != created.sha256:
        raise UserError(f"the adapter of {created.name} at {weights} has sha256 {digest[:12]}..., its version says "
                        f"{created.sha256[:12]}...: the file was changed; restore it or train the version again")
    if created.files_sha256 and (not (folder / CONFIG).is_file() or files_digest(folder) != created.files_sha256):
        raise UserError(f"the adapter of {created.name} at {folder} has another {CONFIG} than it was trained with "
                        "(rank, alpha or target modules changed): restore it or train the version again")
    return folder
