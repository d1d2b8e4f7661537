"""Rollout throughput against the number of episodes in flight in one process.

The same episodes (seeds 0..E-1, E = the largest concurrency) are played at every
concurrency with one loaded policy: env steps per second and generated tokens per second,
their ratio to concurrency 1, and (the embedded model) the ratio to the model's own
batched `generate` at the same batch size in the same process: how close the engine gets
to the model's limit. Greedy decoding in a batch may round differently from decoding
alone: `same_as_alone` counts the episodes whose every answer equals their concurrency-1
run's (each one replays either way: replay needs no model).

`--policy serve` starts `transformers serve` with the embedded model (continuous batching
if it comes up on this machine, else without, and the output says which) and plays
through the OpenAI path; `--policy serve-plain` serves without continuous batching.

`--policy vllm` (in .venv-vllm) compares the engines on the embedded model in one process:
transformers (`local`) and vLLM in-process, each alone and with a LoRA adapter on every
call (the trainer's default for this size, random non-zero weights), each engine's start
time, and vLLM's tokens/s over transformers' at every concurrency. Every arm plays the
embedded model's structure (v0-small: `auto` would give `vllm:` the full one, with other
prompts and 200-token answers, and the figures would compare the structures).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from automem.bench.adapters import random_adapter
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.models.load import make_policies
from automem.engine.policy.spec import parse_spec
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import StepBar, play
from automem.engine.training.config import defaults
from automem.schemas.events import LLMCalled, StepTaken
from automem.schemas.streams import episode_stream


def run(env: str = "crafter", policy: str = "local", concurrency: tuple[int, ...] = (1, 4, 8), steps: int | None = None,
        episodes: int | None = None) -> dict[str, Any]:
    """`steps` per episode: 4 (1 behind a server: a CPU server is slow), `episodes`: the largest concurrency."""
    episodes = episodes or max(concurrency)
    if policy == "vllm":
        return _engines(env, concurrency, steps or 4, episodes)
    served = policy.startswith("serve")
    steps = steps or (1 if served else 4)
    out: dict[str, Any] = {"name": "rollout", "env": env, "policy": policy, "episodes": episodes, "max_steps": steps}
    with ExitStack() as stack:
        if served:
            policy = stack.enter_context(_server(out, (False,) if policy == "serve-plain" else (True, False)))
        agent, memory = make_policies(policy, None)
        levels = [_level(env, policy, agent, memory, c, episodes, steps) for c in concurrency]
    first = levels[0]
    for level in levels:
        level["steps_ratio"] = round(level["steps_per_s"] / first["steps_per_s"], 3)
        level["tokens_ratio"] = round(level["tokens_per_s"] / first["tokens_per_s"], 3) if first["tokens_per_s"] else None
        level["same_as_alone"] = sum(level["answers"][s] == first["answers"][s] for s in first["answers"])
    kind = parse_spec(policy).kind
    if kind == "local":
        from automem.bench.local_batch import bare_generate

        folder = Path(parse_spec(policy).target).expanduser() if parse_spec(policy).target else _bundled()
        prompt = round(statistics.mean(l["mean_prompt_tokens"] for l in levels))
        new = max(1, round(statistics.mean(l["mean_completion_tokens"] for l in levels)))
        for level in levels:
            bare = bare_generate(folder, level["concurrency"], prompt, new)
            level["bare_generate_tokens_per_s"] = round(bare["tokens_per_s"], 2)
            level["of_bare_generate"] = round(level["tokens_per_s"] / bare["tokens_per_s"], 3)
        out["bare_generate"] = {"prompt_tokens": prompt, "new_tokens": new}
    for level in levels:
        del level["answers"]
    out["levels"] = levels
    return out


def _engines(env: str, concurrency: tuple[int, ...], steps: int, episodes: int) -> dict[str, Any]:
    """The same episodes on each engine, alone and with an adapter; engines started one at a time."""
    folder = _bundled()
    config = defaults(135_000_000)  # the trainer's adapter for the embedded model's size
    adapter = random_adapter(folder, Path(tempfile.mkdtemp(prefix="automem-bench-adapter-")) / "adapter",
                             config.rank, config.alpha, config.modules)
    arms = {"local": "local", "vllm": f"vllm:{folder}", "local+lora": f"local+adapter:{adapter}",
            "vllm+lora": f"vllm:{folder}+adapter:{adapter}"}
    out: dict[str, Any] = {"name": "rollout", "env": env, "policy": "vllm", "episodes": episodes, "max_steps": steps,
                           "arms": {}}
    for arm, spec in arms.items():
        start = time.perf_counter()
        agent, _ = make_policies(spec, None)
        started = time.perf_counter() - start
        levels = [_level(env, spec, agent, None, c, episodes, steps, "v0-small") for c in concurrency]
        for level in levels:
            del level["answers"]
        out["arms"][arm] = {"start_s": round(started, 1), "levels": levels}
        if hasattr(agent, "close"):
            agent.close()  # the next engine starts on a machine this one no longer holds
    for engine, reference in (("vllm", "local"), ("vllm+lora", "local+lora")):
        out[f"{engine}_over_{reference}"] = {
            str(a["concurrency"]): round(a["tokens_per_s"] / b["tokens_per_s"], 3) if b["tokens_per_s"] else None
            for a, b in zip(out["arms"][engine]["levels"], out["arms"][reference]["levels"])}
    shutil.rmtree(adapter.parent, ignore_errors=True)
    return out


def _level(env: str, spec: str, agent: Any, memory: Any, concurrency: int, episodes: int, steps: int,
           structure: str = "auto") -> dict[str, Any]:
    root = tempfile.mkdtemp(prefix="automem-bench-rollout-")
    try:
        with LmdbLog(root) as log:
            req = RunRequest(env=env, task=None, episodes=episodes, max_steps=steps, seed=0, policy=spec,
                             concurrency=concurrency, structure=structure)
            bar = StepBar(episodes * steps, f"concurrency {concurrency}")
            start = time.perf_counter()
            try:
                rows = play(log, req, agent, memory, range(episodes), bar)
            finally:
                bar.close()
            seconds = time.perf_counter() - start
            calls: list[LLMCalled] = []
            answers: dict[int, list[str]] = {}
            taken = 0
            for row in rows:
                events = [r.event for r in log.read_stream(episode_stream(row.id))]
                mine = [e for e in events if isinstance(e, LLMCalled)]
                calls += mine
                answers[row.seed] = [c.response for c in mine]
                taken += sum(isinstance(e, StepTaken) for e in events)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    generated = sum(c.completion_tokens for c in calls)
    return {"concurrency": concurrency, "seconds": round(seconds, 2), "steps": taken, "calls": len(calls),
            "steps_per_s": round(taken / seconds, 4), "tokens_per_s": round(generated / seconds, 2),
            "mean_prompt_tokens": round(statistics.mean(c.prompt_tokens for c in calls), 1) if calls else 0,
            "mean_completion_tokens": round(generated / len(calls), 1) if calls else 0,
            "errors": sum(c.error is not None for c in calls), "answers": answers}


def _bundled() -> Path:
    from automem.engine.policy.convert import ensure_converted

    return ensure_converted()


@contextmanager
def _server(out: dict[str, Any], modes: tuple[bool, ...]) -> Iterator[str]:
    """The policy spec of the embedded model behind `transformers serve`, in the first of
    `modes` (continuous batching or not) that comes up and answers; the others' failures go
    to `out["notes"]`."""
    from automem.bench.serve import ServerFailed, served

    folder = _bundled()
    logs = Path(tempfile.mkdtemp(prefix="automem-serve-"))
    for batching in modes:
        try:
            with served(folder, logs / f"serve-cb{int(batching)}.log", continuous_batching=batching) as url:
                spec = f"openai:{folder}@{url}"
                try:
                    make_policies(spec, None)[0].complete(_probe())
                except Exception as exc:  # it came up but cannot answer: try the next mode
                    out.setdefault("notes", []).append(f"continuous batching={batching}: {exc}".splitlines()[0])
                    continue
                out["server"] = {"continuous_batching": batching}
                yield spec
                return
        except ServerFailed as exc:
            out.setdefault("notes", []).append(f"continuous batching={batching}: {exc}".splitlines()[0])
    raise RuntimeError("transformers serve did not come up: " + "; ".join(out.get("notes", [])))


def _probe():
    from automem.engine.policy.base import PolicyRequest

    return PolicyRequest(messages=({"role": "user", "content": "Say ok."},), max_tokens=4)
