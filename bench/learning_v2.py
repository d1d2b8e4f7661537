"""Loop 2's ablation (issue 24): does the scoring make the memory specialist better?

The protocol is fixed before the run, printed in full under "protocol" and stored with the
result. One store holds everything, so every arm trains on the same rollouts and is paired
with the same base episodes:
1. the base's held-out episodes (no training): `policy` acts and keeps memory;
2. training rollouts, sampled (`temperature`, `top_p`), collected as `automem loop` collects
   them: rounds of training seeds (the given ones, then seeds derived from the bench's name
   and the round) until the rule scorer's selection keeps `min_examples` decisions or
   `rollout_budget` episodes are played; rule scores, and probe credit where probes exist;
3. per arm a dataset from those rollouts, a LoRA memory model over `base` trained on it
   (the same settings for every arm), and its held-out episodes with the memory model:
   `scored` (the rule scorer's selection, decisions above their baseline: the paper's
   method), `random` (as many decisions drawn at random, every other filter the same: the
   ablation), `all` (every decision the rules scored, none left out for its score), and
   `probe` (the probe credit's selection) where the training rollouts had probes to ask.

Figures per held-out episode: progression, the proficiency figures, probe accuracy (the
base `policy` reads; every 10 steps). The primary figure is named by rule before the run:
probe accuracy where the base's held-out episodes have probes, else the share of checkable
claims that held. Every arm gets paired per-seed differences against the base and against
`random`, each with a bootstrap 95% interval (higher is better: figures where lower is
better are negated). `moved`: of the memory-role answers at places where an arm's episode
and the base's saw the same prompt, the share that differ (did training change the
answers at all). `finding` says which link held and which failed, from those numbers.

`automem bench learning-v2 --json` (about an hour on 2 CPU cores at the defaults); the same
protocol at GPU size is `bench/gpu_learning.py`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import msgspec

from automem.engine.evaluation.paired import interval, mean
from automem.engine.evaluation.proficiency import FIGURES
from automem.schemas.errors import UserError

ARMS = ("base", "scored", "random", "all", "probe")
LABEL = "bench-learning-v2"


class Protocol(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that decides the bench's results; printed as `protocol`."""

    name: str = "learning-v2"  # derived training seeds come from it
    env: str = "crafter"
    policy: str = "local"  # acts, keeps memory in the rollouts, reads the probes
    base: str = "local"  # the memory model trained
    structure: str = "v0-small-lookup"
    max_steps: int = 10
    train_seeds: tuple[int, ...] = (1000, 1001, 1002, 1003)  # one round; later rounds derive new seeds
    heldout_seeds: tuple[int, ...] = (3000, 3001, 3002, 3003, 3004)
    temperature: float = 1.0
    top_p: float = 1.0
    min_examples: int = 300
    min_score: float | None = None  # the scored arm's selection: None is the rule scorer's default, above 0
    rollout_budget: int = 16  # training episodes at most
    train_steps: int = 16
    config: dict[str, Any] = msgspec.field(default_factory=lambda: {"batch_size": 4, "warmup_ratio": 0.0,
                                                                    "learning_rate": 1e-3})
    device: str = "cpu"
    concurrency: int = 4
    probes: bool = True

    def check(self) -> Protocol:
        """A held-out seed among the training seeds (whose rollouts select the data) is refused."""
        shared = sorted(set(self.train_seeds) & set(self.heldout_seeds))
        if shared:
            raise UserError(f"held-out seeds {shared} are also training seeds: the data would be selected on the "
                            "episodes the arms are judged on; keep them apart")
        if self.rollout_budget < len(self.train_seeds):
            raise UserError(f"the rollout budget ({self.rollout_budget}) is under one round ({len(self.train_seeds)})")
        return self

    def settings(self):  # -> Settings, for the loop's seed derivation and sampling
        from automem.engine.envs import resolve_task
        from automem.engine.loop import Settings

        return Settings(env=self.env, task=resolve_task(self.env, None), train_seeds=self.train_seeds,
                        select_seeds=(), heldout_seeds=self.heldout_seeds, max_steps=self.max_steps, loops=(2,),
                        policy=self.policy, structure=self.structure, base=self.base, temperature=self.temperature,
                        top_p=self.top_p, fresh_seeds=True, min_examples=self.min_examples,
                        rollout_budget=self.rollout_budget)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(env: str = "crafter", policy: str = "local", concurrency: int = 4, **sizes: Any) -> dict[str, Any]:
    """`automem bench learning-v2`: the default protocol (its sizes may be changed by keyword)."""
    return run_protocol(Protocol(env=env, policy=policy, concurrency=concurrency, **sizes))


def run_protocol(p: Protocol, root: Path | None = None, say: Callable[[str], None] = _say) -> dict[str, Any]:
    """Every arm in one store; the JSON document described above."""
    from automem.engine.log.lmdb.log import LmdbLog

    p.check()
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="automem-bench-learning-v2-")) if root is None else root
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    try:
        with LmdbLog(root / "store") as log:
            doc = _run(log, root / "store", p, say, seconds)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    seconds["total"] = round(time.perf_counter() - started, 1)
    doc["seconds"] = seconds
    return doc


class _Timer:
    def __init__(self, seconds: dict[str, float], name: str, say: Callable[[str], None]) -> None:
        self.seconds, self.name, self.say = seconds, name, say

    def __enter__(self) -> None:
        self.say(f"{self.name} ...")
        self.t = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.seconds[self.name] = round(time.perf_counter() - self.t, 1)
        self.say(f"{self.name}: {self.seconds[self.name]} s")


def _run(log: Any, data: Path, p: Protocol, say: Callable[[str], None], seconds: dict[str, float]) -> dict[str, Any]:
    from automem.engine.dataset import Selection, selectable
    from automem.engine.envs import resolve_task
    from automem.engine.evaluation import play_seeds
    from automem.engine.loop.collect import collect
    from automem.engine.loop.plan import training_seeds
    from automem.engine.probes.figure import probe_figure
    from automem.engine.rollout.players import Local
    from automem.engine.rollout.request import RunRequest
    from automem.engine.scoring import score_episodes
    from automem.engine.structure.registry import resolve_structure

    settings = p.settings()
    version = resolve_structure(log, p.env, p.structure, p.policy)[1]
    player = Local(p.concurrency, bar=True)
    probe = probe_figure(log, p.policy) if p.probes else None
    request = RunRequest(env=p.env, task=resolve_task(p.env, None), episodes=1, max_steps=p.max_steps, seed=0,
                         policy=p.policy, structure=version)

    def heldout(model: str | None) -> Any:
        req = msgspec.structs.replace(request, memory_policy=f"model:{model}" if model else None)
        return play_seeds(log, data, req, list(p.heldout_seeds), player, probe)

    with _Timer(seconds, "base held-out", say):
        sides = {"base": heldout(None)}
    rule = Selection(env=p.env, min_score=p.min_score)  # by default: decisions above their baseline

    def count(episodes: list[str], seeds: tuple[int, ...]) -> int:
        score_episodes(log, episodes)
        return selectable(log, msgspec.structs.replace(rule, seeds=seeds))

    sampled = msgspec.structs.replace(request, sampling=settings.rollout_sampling)
    with _Timer(seconds, "rollouts", say):
        got = collect(lambda seeds: play_seeds(log, data, sampled, list(seeds), player),
                      lambda round_: training_seeds(settings, p.name, 1, round_), p.rollout_budget, p.min_examples,
                      count)
        score_episodes(log, list(got.episodes))
    seeds = got.seeds
    selections = {"scored": msgspec.structs.replace(rule, seeds=seeds)}
    arms: dict[str, dict[str, Any]] = {"base": {"dataset": None}}
    with _Timer(seconds, "datasets", say):
        scored = _dataset(log, data, selections["scored"])
        arms["scored"] = {"dataset": scored}
        size = scored["examples"] if scored["dataset"] else 0
        if size:
            selections["random"] = Selection(env=p.env, seeds=seeds, sample=size, sample_seed=0)
        selections["all"] = Selection(env=p.env, seeds=seeds, top=1.0)
        probe_runs = _probe_credit(log, list(got.episodes), p.policy) if p.probes else 0
        if probe_runs:
            selections["probe"] = Selection(env=p.env, seeds=seeds, scorer="probes")
        for arm in ("random", "all", "probe"):
            if arm in selections:
                arms[arm] = {"dataset": _dataset(log, data, selections[arm])}
            else:
                arms[arm] = {"dataset": None, "skipped": "no probes to ask in the training rollouts" if arm == "probe"
                             else "the scored selection kept nothing to match in size"}
    for arm in ("scored", "random", "all", "probe"):
        ds = arms[arm]["dataset"]
        if not ds or not ds["dataset"]:
            arms[arm].setdefault("skipped", (ds or {}).get("error", "no dataset"))
            continue
        with _Timer(seconds, f"train {arm}", say):
            arms[arm]["trained"] = _train(log, data, p, ds["dataset"])
        with _Timer(seconds, f"held-out {arm}", say):
            sides[arm] = heldout(arms[arm]["trained"]["model_version"])
    primary = "probe_accuracy" if any("probe_accuracy" in f for f in sides["base"].figures) else "true_claim_share"
    for arm, side in sides.items():
        arms[arm]["figures"] = _figures(side)
        arms[arm]["episodes"] = list(side.episodes)
        if arm != "base":
            arms[arm]["vs_base"] = _paired(side, sides["base"], f"{arm}/base")
            if "random" in sides and arm != "random":
                arms[arm]["vs_random"] = _paired(side, sides["random"], f"{arm}/random")
            arms[arm]["moved"] = _moved(log, side.episodes, sides["base"].episodes)
    doc: dict[str, Any] = {
        "name": "learning-v2", "protocol": _plain({**msgspec.structs.asdict(p), "structure_version": version,
                                                   "selections": {a: s.recorded() for a, s in selections.items()}}),
        "primary": primary,
        "rollouts": {"episodes": len(got.episodes), "seeds": list(seeds), "selectable": got.selectable,
                     "stopped": got.stopped, "mean_progression": mean(list(got.progression)),
                     "probe_runs": probe_runs},
        "arms": {a: arms[a] for a in ARMS if a in arms},
    }
    doc["finding"] = finding(doc)
    return doc


def _plain(value: Any) -> Any:
    """As JSON holds it (tuples become lists), so the document equals its own round trip."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _dataset(log: Any, data: Path, selection: Any) -> dict[str, Any]:
    from automem.engine.dataset import build_dataset

    try:
        built = build_dataset(log, data, selection)
    except UserError as exc:  # a selection that keeps nothing is a result, not a crash
        return {"dataset": "", "examples": 0, "error": str(exc)}
    return _plain({"dataset": built.dataset, "examples": built.examples, "counts": built.counts,
                   "removed": built.removed, "rejected": built.rejected})


def _probe_credit(log: Any, episodes: list[str], reader: str) -> int:
    """Probe the training rollouts and credit their writes; how many episodes got credit."""
    from automem.engine.models.load import load_policy
    from automem.engine.probes.credit import score_probes
    from automem.engine.probes.figure import EVERY
    from automem.engine.probes.run import probe_episode

    policy, credited = load_policy(reader, log), 0
    for episode in episodes:
        run = probe_episode(log, episode, policy, every=EVERY)
        if run.overall.memory.n:
            credited += score_probes(log, episode, run.run)[1] > 0
    return credited


def _train(log: Any, data: Path, p: Protocol, dataset: str) -> dict[str, Any]:
    from automem.engine.training import TrainRequest, train

    config = data / f"train-{LABEL}.json"
    config.write_text(json.dumps(p.config, sort_keys=True))
    result = train(log, data, TrainRequest(dataset=dataset, base=p.base, config=str(config), max_steps=p.train_steps,
                                           device=p.device, distill=p.policy != p.base))
    assert result is not None, "training on one process always writes"
    return {"model_version": result.model_version, "loss": result.loss, "steps": result.steps, "tokens": result.tokens}


def _figures(side: Any) -> dict[str, dict[str, float] | float]:
    """Each figure's mean over the held-out seeds with its bootstrap interval (n: the seeds that have it)."""
    out: dict[str, Any] = {"progression": _interval(list(side.progression), "progression")}
    for name in FIGURES:
        values = [f[name] for f in side.figures if name in f]
        if values:
            out[name] = _interval(values, name)
    return out


def _interval(values: list[float], label: str) -> dict[str, float]:
    lo, hi = interval(values, f"{LABEL}/{label}")
    return {"mean": mean(values), "low": lo, "high": hi, "n": len(values)}


def _paired(side: Any, other: Any, label: str) -> dict[str, dict[str, float]]:
    """Per figure, the paired per-seed difference (higher is better) where both episodes have it."""
    out = {"progression": _interval([round(a - b, 6) for a, b in zip(side.progression, other.progression)],
                                    f"{label}/progression")}
    for name in FIGURES:
        pairs = [(a, b) for a, b in zip(side.metric(name), other.metric(name)) if a is not None and b is not None]
        if pairs:
            out[name] = _interval([round(a - b, 6) for a, b in pairs], f"{label}/{name}")
    return out


def _moved(log: Any, episodes: list[str], base: list[str]) -> dict[str, float]:
    """Of the memory-role answers given to the same prompt in an arm's episode and the base's
    on the same seed, the share that differ: whether training moved the answers at all."""
    from automem.engine.episodes.read import read_episode
    from automem.schemas.events import LLMCalled

    same = differ = 0
    for ours, theirs in zip(episodes, base):
        calls = [{(c.step, c.phase, c.turn): c for c in read_episode(log, ep).events
                  if isinstance(c, LLMCalled) and c.role in ("memory", "agent") and c.phase in ("log", "plan")}
                 for ep in (ours, theirs)]
        for place, call in calls[0].items():
            other = calls[1].get(place)
            if call.role == "memory" and other is not None and other.prompt_digest == call.prompt_digest:
                same += 1
                differ += call.response != other.response
    return {"compared": same, "differ": differ, "share": round(differ / same, 6) if same else 0.0}


def finding(doc: dict[str, Any]) -> str:
    """Which link held and which failed, from the figures (nothing here is written in advance)."""
    primary, arms = doc["primary"], doc["arms"]
    parts = [f"primary figure {primary}; rollouts: {doc['rollouts']['episodes']} episodes, stopped by "
             f"{doc['rollouts']['stopped'] or 'one round'} ({doc['rollouts']['selectable']} selectable)"]
    gains = []
    for arm in ("scored", "random", "all", "probe"):
        a = arms.get(arm, {})
        if "vs_base" not in a:
            parts.append(f"{arm}: not run ({a.get('skipped', 'no dataset')})")
            continue
        d = a["vs_base"].get(primary)
        r = a.get("vs_random", {}).get(primary)
        text = f"{arm}: {a['dataset']['examples']} examples, loss {a['trained']['loss']:.3g}, moved {a['moved']['share']:.0%}"
        if d is not None:
            text += f", vs base {d['mean']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]"
            if d["low"] > 0:
                gains.append(arm)
        if r is not None:
            text += f", vs random {r['mean']:+.3g} [{r['low']:+.3g}, {r['high']:+.3g}]"
        parts.append(text)
    scored = arms.get("scored", {})
    kept = (scored.get("dataset") or {}).get("examples", 0)
    wanted = doc["protocol"]["min_examples"]
    if gains:
        head = f"measurable gain on {primary} against the base in: {', '.join(gains)}"
    elif not kept:
        head = "no gain: the selection kept nothing useful (the scored selection is empty)"
    elif kept < wanted:
        head = (f"no gain: the selection kept too little ({kept} examples where the protocol asks {wanted}: "
                f"{doc['rollouts']['episodes']} rollouts gave {doc['rollouts']['selectable']} decisions above their "
                "baseline)")
    elif scored.get("moved", {}).get("share", 0) == 0:
        head = "no gain: training did not move the answers (the memory model answers the base's prompts as the base)"
    else:
        head = "no gain: the answers moved but the figures did not (no arm's interval against the base is above 0)"
    return "; ".join([head, *parts])
