"""Loop 2's trainer: LoRA supervised fine-tuning of a memory specialist on a dataset, as a model version.

Read in this order: config (hyperparameters), data (loss on the final answer only),
trainer (peft + transformers' Trainer), run (one training from a dataset in the log to a
version in it, written by `engine.models.versions`).

May import: schemas, log, policy, agent, models; torch, transformers and peft inside the
functions that train, so importing the package is cheap.
"""

from automem.engine.training.config import TrainConfig
from automem.engine.training.run import TrainRequest, TrainResult, train

__all__ = ["TrainConfig", "TrainRequest", "TrainResult", "train"]
