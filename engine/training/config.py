"""Training hyperparameters: one msgspec Struct, defaults by the base model's size, a file to override them.

The defaults follow the seed's priors for ~32B models (rank 128, alpha twice the rank,
learning rate 5e-5, cosine schedule with 5% warmup, every linear layer) and scale down
to small ranks and a higher rate for the 135M embedded model, where a rank-8 adapter on
the attention projections is plenty and a low rate would barely move in a CPU run.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from automem.schemas.errors import UserError

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")  # Llama, Qwen2, Mistral, SmolLM2 names
SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup")


class TrainConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rank: int
    alpha: int
    dropout: float = 0.05
    target_modules: str | list[str] = "attention"  # "attention" (q/k/v/o), "all-linear", or module names
    learning_rate: float
    schedule: str = "cosine"
    warmup_ratio: float = 0.05
    epochs: float = 1.0
    max_steps: int | None = None  # when set, it wins over epochs
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 2048  # longer examples are left out and counted, never cut (a cut loses the answer or the rules)
    weight_decay: float = 0.0
    seed: int = 0
    bf16: Literal["auto", "on", "off"] = "auto"  # auto: on a GPU that supports it
    gradient_checkpointing: bool = False
    report_to: str = "none"  # passed to transformers (tensorboard, wandb, ...)

    def check(self) -> TrainConfig:
        problems = [what for bad, what in (
            (self.rank < 1, "rank must be at least 1"), (self.alpha < 1, "alpha must be at least 1"),
            (not 0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (not 0 < self.learning_rate < 1, "learning_rate must be in (0, 1)"),
            (self.schedule not in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (not 0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.epochs <= 0, "epochs must be positive"),
            (self.max_steps is not None and self.max_steps < 1, "max_steps must be at least 1"),
            (self.batch_size < 1 or self.grad_accum < 1, "batch_size and grad_accum must be at least 1"),
            (self.max_length < 16, "max_length must be at least 16"),
            (isinstance(self.target_modules, str) and self.target_modules not in ("attention", "all-linear"),
             'target_modules must be "attention", "all-linear" or a list of module names'),
            (isinstance(self.target_modules, list) and not self.target_modules, "target_modules must not be empty"),
        ) if bad]
        if problems:
            raise UserError(f"bad training config: {'; '.join(problems)}")
        return self

    @property
    def modules(self) -> str | list[str]:
        """What peft's LoraConfig takes."""
        return list(ATTENTION) if self.target_modules == "attention" else self.target_modules


def defaults(parameters: int) -> TrainConfig:
    """The priors for a base of this many parameters."""
    if parameters < 1_000_000_000:
        return TrainConfig(rank=8, alpha=16, learning_rate=5e-4, target_modules="attention")
    if parameters < 20_000_000_000:
        return TrainConfig(rank=64, alpha=128, learning_rate=1e-4, target_modules="all-linear", batch_size=2,
                           grad_accum=8, max_length=8192, gradient_checkpointing=True)
    return TrainConfig(rank=128, alpha=256, learning_rate=5e-5, target_modules="all-linear", batch_size=1,
                       grad_accum=16, max_length=8192, gradient_checkpointing=True)


def read_overrides(path: Path) -> dict[str, object]:
    """A TOML (by its suffix) or JSON file of TrainConfig fields."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read --config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"--config {path} is not UTF-8 text: {exc.reason}") from None
    return parse_overrides(text, path.suffix == ".toml", f"--config {path}")


def parse_overrides(text: str, toml: bool, source: str = "--config") -> dict[str, object]:
    """TrainConfig fields from a TOML or JSON document's text."""
    try:
        doc = tomllib.loads(text) if toml else json.loads(text)
    except ValueError as exc:
        raise UserError(f"{source} is not valid {'TOML' if toml else 'JSON'}: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise UserError(f"{source} must hold a table of training settings")
    return doc


def suffix_of(text: str) -> str:
    """The file suffix a config's text reads as: a JSON object, else TOML."""
    return ".json" if text.lstrip().startswith("{") else ".toml"


def resolve(parameters: int, overrides: dict[str, object], max_steps: int | None = None,
            source: str = "--config") -> TrainConfig:
    """The defaults for the size, the file's fields over them, then --max-steps."""
    merged = {**msgspec.to_builtins(defaults(parameters)), **overrides}
    if max_steps is not None:
        merged["max_steps"] = max_steps
    try:
        return msgspec.convert(merged, TrainConfig).check()
    except msgspec.ValidationError as exc:
        raise UserError(f"bad training setting in {source}: {exc}") from None


def flatten(config: TrainConfig) -> dict[str, str]:
    """The config as the event's params: strings, lists joined by commas, unset fields left out."""
    return {k: ",".join(v) if isinstance(v, list) else str(v)
            for k, v in msgspec.structs.asdict(config).items() if v is not None}


def run_digest(dataset: str, base_identity: str, config: TrainConfig) -> str:
    """What makes two trainings the same: the data, the base's weights and every setting."""
    doc = msgspec.json.encode({"dataset": dataset, "base": base_identity, "config": config})
    return hashlib.sha256(doc).hexdigest()[:16]
