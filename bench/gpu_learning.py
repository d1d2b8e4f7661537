"""GPU: the learning curve at real size, the protocol of `automem bench learning` (bench/learning.py).

The agent and loop 1's reviewer are a served model behind an OpenAI-compatible endpoint
(policy spec `openai:MODEL@URL`, e.g. vLLM or `transformers serve`), loop 2 trains LoRA
over `--base` (`local`, the embedded SmolLM2-135M, or a model folder) on the GPU. The same
four arms (base, loop 1 only, loop 2 only, both), each in its own copy of one seed store
that played the starting structure once, with more seeds, steps and iterations; one JSON
document on stdout, progress on stderr:

    python bench/gpu_learning.py --endpoint http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct \
        [--base local|PATH] [--seeds 10] [--max-steps 100] [--iterations 4] [--train-steps 50]

The agent's model should be the one `--base` is (a LoRA of another model is distillation;
the loop records that). `--tiny` checks the script itself on a CPU in well under a minute:
the random policy, a scripted `file:` reviewer, 2 seeds of 4 steps, one iteration, 2
training steps; its figures mean nothing.

`--v2` runs loop 2's ablation instead (`automem bench learning-v2`, bench/learning_v2.py:
base, scored, random, all and probe arms from one set of sampled rollouts), unchanged but
for its sizes: `--seeds` training seeds per round, `--heldout` held-out seeds, rollouts
until `--min-examples` selected decisions or `--rollout-budget` episodes, `--structure`
(default v0, the full models' lineage):

    python bench/gpu_learning.py --v2 --endpoint URL --model NAME [--base PATH] [--heldout 20] \
        [--min-examples 300] [--rollout-budget 100] [--train-steps 100]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("--model", help="the served model's name (agent and reviewer)")
    ap.add_argument("--reviewer", help="another reviewer spec (default: the agent's)")
    ap.add_argument("--base", default="local", help="the base model LoRA trains: local | PATH")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--env", default="crafter")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per set (training, selection, held-out)")
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--train-steps", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--reviewer-turns", type=int, default=6)
    ap.add_argument("--reviewer-tokens", type=int, default=4096)
    ap.add_argument("--arms", default="base,loop1,loop2,both")
    ap.add_argument("--tiny", action="store_true", help="a CPU check of this script (random policy, file: reviewer)")
    ap.add_argument("--v2", action="store_true", help="loop 2's ablation (bench/learning_v2.py) instead of the curve")
    ap.add_argument("--heldout", type=int, default=20, help="--v2: held-out seeds")
    ap.add_argument("--min-examples", type=int, default=300, help="--v2: selected decisions to collect")
    ap.add_argument("--rollout-budget", type=int, default=100, help="--v2: training episodes at most")
    ap.add_argument("--structure", default="v0", help="--v2: the structure every arm plays")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gpu_rollout import (
        _automem,  # the same shim: automem from this checkout when not installed
    )

    _automem()
    if args.v2:
        return _v2(ap, args)
    from automem.bench.learning import ARMS, Protocol, run_arms, scripted_reviewer

    arms = tuple(a for a in args.arms.split(",") if a)
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        ap.error(f"unknown arm(s) {', '.join(unknown)}: choose from {', '.join(ARMS)}")
    work = Path(tempfile.mkdtemp(prefix="automem-gpu-learning-"))
    if args.tiny:
        protocol = Protocol(env=args.env, policy="random", reviewer=scripted_reviewer(work / "reviewer.jsonl"),
                            base="local", seeds_per_set=2, max_steps=4, iterations=1, train_steps=2,
                            config={"max_steps": 2, "batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0},
                            device="cpu", concurrency=1)
    else:
        if not (args.endpoint and args.model):
            ap.error("--endpoint and --model are needed (or --tiny)")
        agent = f"openai:{args.model}@{args.endpoint}"
        protocol = Protocol(env=args.env, policy=agent, reviewer=args.reviewer or agent, base=args.base,
                            seeds_per_set=args.seeds, max_steps=args.max_steps, iterations=args.iterations,
                            train_steps=args.train_steps, config={}, reviewer_turns=args.reviewer_turns,
                            reviewer_tokens=args.reviewer_tokens, device=args.device, concurrency=args.concurrency)
    try:
        doc = run_arms(protocol, arms, root=work / "stores")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc["name"] = "gpu_learning" + ("(tiny)" if args.tiny else "")
    return doc


def _v2(ap: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    """bench/learning_v2.py's protocol at the sizes given (or its --tiny CPU check)."""
    from automem.bench.learning_v2 import Protocol, run_protocol

    if args.tiny:
        protocol = Protocol(env=args.env, policy="random", max_steps=3, train_seeds=(1000, 1001),
                            heldout_seeds=(3000, 3001), min_examples=4, min_score=0.0, rollout_budget=4,
                            train_steps=1, config={"batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0},
                            concurrency=1)
    else:
        if not (args.endpoint and args.model):
            ap.error("--endpoint and --model are needed (or --tiny)")
        protocol = Protocol(env=args.env, policy=f"openai:{args.model}@{args.endpoint}", base=args.base,
                            structure=args.structure, max_steps=args.max_steps,
                            train_seeds=tuple(range(1000, 1000 + args.seeds)),
                            heldout_seeds=tuple(range(3000, 3000 + args.heldout)), min_examples=args.min_examples,
                            rollout_budget=args.rollout_budget, train_steps=args.train_steps, config={},
                            device=args.device, concurrency=args.concurrency)
    work = Path(tempfile.mkdtemp(prefix="automem-gpu-learning-v2-"))
    try:
        doc = run_protocol(protocol, root=work / "store")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc["name"] = "gpu_learning_v2" + ("(tiny)" if args.tiny else "")
    return doc


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
