"""LoRA supervised fine-tuning with peft and transformers' own `Trainer`.

Nothing here is a hand-written loop: the `Trainer` brings bf16, gradient checkpointing,
`accelerate launch`/`torchrun` over several GPUs and a DeepSpeed config (through
`ACCELERATE_*`/`--deepspeed` as its users know them). What this module adds is small: a
collator that pads labels with -100, a count of the tokens that carried loss, a progress
bar with the loss on stderr (the stock one prints its logs to stdout, where `--json`
goes), and the adapter saved as safetensors only. On the CPU a run is deterministic:
the seed is set before the adapter's weights are drawn, and the data order follows it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

import msgspec

from automem.engine.files import room, writing
from automem.engine.policy.adapters import ADAPTER_FILES, CONFIG
from automem.engine.training.config import TrainConfig
from automem.engine.training.data import IGNORE, Tokenized
from automem.schemas.errors import UserError


class Trained(msgspec.Struct, frozen=True, kw_only=True):
    loss: float  # of the last optimizer step
    tokens: int  # tokens that carried loss, over all steps and processes
    steps: int
    history: list[tuple[int, float]]  # (step, loss) per optimizer step
    device: str
    main: bool  # the process that writes (rank 0 of a multi-GPU run)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Without transformers' deprecation notice about an attribute peft reads: noise on stderr."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def pick_device(wanted: str) -> str:
    import torch

    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu or auto")
    if wanted not in ("cpu", "cuda"):
        raise UserError(f"bad --device {wanted!r}: use auto, cpu or cuda")
    return wanted


def _bf16(config: TrainConfig, device: str) -> bool:
    import torch

    if config.bf16 == "auto":
        return device == "cuda" and torch.cuda.is_bf16_supported()
    return config.bf16 == "on"


def _progress() -> Any:
    """A tqdm bar on stderr with the latest loss; it also keeps the loss per step."""
    from tqdm import tqdm
    from transformers import TrainerCallback

    class LossBar(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Any = None
            self.history: list[tuple[int, float]] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, desc="training", unit="step", file=sys.stderr,
                                dynamic_ncols=True)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.history.append((state.global_step, float(logs["loss"])))
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    return LossBar()


def _counting_trainer() -> type:
    from transformers import Trainer

    class CountingTrainer(Trainer):
        """Counts the tokens that carried loss (this process's share)."""

        targets = 0

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if model.training:
                self.targets += int((inputs["labels"] != IGNORE).sum())
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return CountingTrainer


def _checkpointing(arguments: type, enabled: bool) -> dict[str, Any]:
    """Gradient checkpointing under the name this transformers knows (5.x renamed it activation_checkpointing)."""
    import inspect

    name = "activation" if "activation_checkpointing" in inspect.signature(arguments).parameters else "gradient"
    return {f"{name}_checkpointing": enabled, f"{name}_checkpointing_kwargs": {"use_reentrant": False}}


def _canonical(config: Path) -> None:
    """peft writes target_modules from a set, in the process's hash order: sorted, with sorted
    keys, the file is the same bytes every run of one training (same base folder, same peft),
    as the version's digest of it needs."""
    doc = json.loads(config.read_text(encoding="utf-8"))
    if isinstance(doc.get("target_modules"), list):
        doc["target_modules"] = sorted(doc["target_modules"])
    config.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_tokenizer(folder: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if not tokenizer.chat_template:
        raise UserError(f"{folder} has no chat template: train an instruct (chat) model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of attention and loss alike
    return tokenizer


def train_adapter(folder: Path, tokenizer: Any, examples: list[Tokenized], config: TrainConfig, device: str,
                  out: Path, work: Path, callbacks: tuple[Any, ...] = ()) -> Trained:
    """Train a LoRA adapter of the model in `folder`; rank 0 writes it into `out` (safetensors only).
    `work` is the Trainer's output folder: what `report_to` writes (TensorBoard's runs/) stays there."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        ProgressCallback,
        TrainingArguments,
        set_seed,
    )

    bf16 = _bf16(config, device)
    set_seed(config.seed)  # before the adapter's weights are drawn
    # Any: peft's wrapper forwards the base model's attributes at run time, which no stub says
    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16 if bf16 else torch.float32)
    try:
        with _quiet():
            model = get_peft_model(model, LoraConfig(r=config.rank, lora_alpha=config.alpha,
                                                     lora_dropout=config.dropout, target_modules=config.modules,
                                                     task_type="CAUSAL_LM"))
    except ValueError as exc:  # target modules the model does not have
        raise UserError(f"LoRA on {folder}: {str(exc).splitlines()[0]} (set target_modules in --config)") from None
    room(out.parent, "the model version",  # the adapter's own size: a full disk is found before training, not after
         need=sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad))
    args = TrainingArguments(
        output_dir=str(work), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
        lr_scheduler_type=config.schedule, warmup_steps=config.warmup_ratio, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, weight_decay=config.weight_decay, seed=config.seed, data_seed=config.seed,
        bf16=bf16, **_checkpointing(TrainingArguments, config.gradient_checkpointing), report_to=config.report_to,
        logging_steps=1,
        save_strategy="no", use_cpu=device == "cpu", remove_unused_columns=False, disable_tqdm=False,
    )
    bar = _progress()
    trainer = _counting_trainer()(
        model=model, args=args, train_dataset=[msgspec.structs.asdict(e) for e in examples],
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE),
        callbacks=[bar, *callbacks],
    )
    trainer.remove_callback(ProgressCallback)
    with _quiet():
        trainer.train()
    tokens = int(trainer.accelerator.reduce(torch.tensor(trainer.targets, device=trainer.args.device), "sum"))
    main = trainer.is_world_process_zero()
    if main:
        with writing(out, "the model version"):
            model.save_pretrained(out, safe_serialization=True)
            for extra in set(os.listdir(out)) - set(ADAPTER_FILES):
                os.remove(out / extra)  # peft's model card: not part of the version
            _canonical(out / CONFIG)
    return Trained(loss=bar.history[-1][1] if bar.history else float("nan"), tokens=tokens,
                   steps=trainer.state.global_step, history=bar.history, device=device, main=main)
