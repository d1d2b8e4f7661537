"""The learning curve, measured: `automem loop` in four arms from one shared baseline.

Protocol (fixed in advance; the output states it under "protocol"):
- agent SmolLM2-135M (`--policy local`), reviewer the same model (`local`), LoRA trained
  over the same base (`local`) on the CPU; Crafter, structure `v0-small` given explicitly
  (so "auto" cannot differ between arms);
- disjoint seed sets: training 1000.., selection 2000.., held-out 3000.., 4 seeds each,
  12 steps per episode, 2 iterations, 8 training steps (batch 2, learning rate 1e-3),
  4 episodes in flight; the reviewer gets 3 turns of at most 1024 tokens (v0-small's
  document is ~900 tokens: a whole proposal fits);
- four arms, each in its own fresh store: `base` (no learning: iteration 0 only),
  `loop1` (`loops=(1,)`), `loop2` (`loops=(2,)`), `both` (`loops=(1,2)`).

The starting structure's episodes (held-out: the baseline, training: iteration 1's
rollouts, selection: the parent / incumbent side) are played once in a seed store; its
closed LMDB folder is copied for each arm. Decoding is greedy, so the loop's `play_seeds`
finds those ended episodes of the same request and reuses them: every arm's baseline is
the same episodes. That is checked, not assumed: `baseline_reused` counts the arm's
baseline episodes that are the seed store's (it must be the number of held-out seeds).

Per arm and iteration (0 = the baseline): the held-out mean progression with a bootstrap
95% interval over the held-out seeds, the paired per-seed difference from the baseline
with its interval, loop 1's decision (accepted, valid, reason) and loop 2's (dataset
examples, loss, promoted), and the arm's wall time. `ratio`: per arm, the final held-out
mean progression over the baseline's (1.0 = no change; null when the baseline is 0, where a
ratio means nothing). `finding` is computed from those numbers.

`automem bench learning --json` (15 minutes on 2 CPU cores at the defaults);
bench/gpu_learning.py runs the same arms at real size against a served model.
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

from automem.engine.evaluation.paired import mean

ARMS: dict[str, tuple[int, ...]] = {"base": (), "loop1": (1,), "loop2": (2,), "both": (1, 2)}
LABEL = "bench-learning/heldout"  # one bootstrap label: the same per-seed figures give the same interval in every arm


class Protocol(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that decides the bench's results; printed as `protocol`."""

    env: str = "crafter"
    policy: str = "local"
    reviewer: str = "local"
    base: str = "local"
    structure: str = "v0-small"
    seeds_per_set: int = 4
    train_start: int = 1000
    select_start: int = 2000
    heldout_start: int = 3000
    max_steps: int = 12
    iterations: int = 2
    train_steps: int = 8
    config: dict[str, Any] = msgspec.field(default_factory=lambda: {"batch_size": 2, "warmup_ratio": 0.0,
                                                                    "learning_rate": 1e-3})
    reviewer_turns: int = 3
    reviewer_tokens: int = 1024
    device: str = "cpu"
    concurrency: int = 4

    def seeds(self, start: int) -> tuple[int, ...]:
        return tuple(range(start, start + self.seeds_per_set))

    def settings(self, loops: tuple[int, ...]):  # -> Settings
        from automem.engine.envs import resolve_task
        from automem.engine.loop import Settings

        return Settings(env=self.env, task=resolve_task(self.env, None), train_seeds=self.seeds(self.train_start),
                        select_seeds=self.seeds(self.select_start), heldout_seeds=self.seeds(self.heldout_start),
                        max_steps=self.max_steps, loops=loops, policy=self.policy, structure=self.structure,
                        reviewer=self.reviewer if 1 in loops else "", reviewer_turns=self.reviewer_turns,
                        reviewer_tokens=self.reviewer_tokens, base=self.base, train_steps=self.train_steps,
                        config=json.dumps(self.config, sort_keys=True) if self.config else "", device=self.device)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(env: str = "crafter", policy: str = "local", concurrency: int = 4, **sizes: Any) -> dict[str, Any]:
    """`automem bench learning`: the default protocol (its sizes may be changed by keyword)."""
    return run_arms(Protocol(env=env, policy=policy, reviewer=sizes.pop("reviewer", policy), concurrency=concurrency,
                             **sizes))


def run_arms(p: Protocol, arms: tuple[str, ...] = tuple(ARMS), root: Path | None = None,
             say: Callable[[str], None] = _say) -> dict[str, Any]:
    """The seed store, then each arm in its own copy of it; the JSON document described above."""
    from automem.engine.log.lmdb.log import LmdbLog

    own = root is None
    root = Path(tempfile.mkdtemp(prefix="automem-bench-learning-")) if root is None else root
    started = time.perf_counter()
    try:
        seed = root / "seed"
        say("seed store: the starting structure on the held-out, training and selection seeds")
        t = time.perf_counter()
        with LmdbLog(seed) as log:
            base_eps = _play_base(log, seed, p)
        seed_s = round(time.perf_counter() - t, 1)
        out_arms = {}
        for arm in arms:
            folder = root / arm
            shutil.copytree(seed, folder)
            say(f"arm {arm}: loops {','.join(map(str, ARMS[arm])) or 'none'}")
            t = time.perf_counter()
            with LmdbLog(folder) as log:
                out_arms[arm] = _arm(log, folder, p, arm, base_eps, say)
            out_arms[arm]["seconds"] = round(time.perf_counter() - t, 1)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    doc: dict[str, Any] = {
        "name": "learning", "protocol": {**msgspec.structs.asdict(p), "arms": {a: list(ARMS[a]) for a in arms},
                                         "train_seeds": list(p.seeds(p.train_start)),
                                         "select_seeds": list(p.seeds(p.select_start)),
                                         "heldout_seeds": list(p.seeds(p.heldout_start))},
        "arms": out_arms, "seconds": {"seed_store": seed_s, **{a: out_arms[a]["seconds"] for a in out_arms},
                                      "total": round(time.perf_counter() - started, 1)},
        "ratio": {a: out_arms[a]["ratio"] for a in out_arms},
        "ratio_means": "final held-out mean progression / the baseline's, per arm (1.0: no change; null: baseline 0)",
    }
    doc["finding"] = finding(doc)
    return doc


def _request(log: Any, p: Protocol):  # -> RunRequest, as the loop's driver builds it for the starting structure
    from automem.engine.envs import resolve_task
    from automem.engine.rollout.request import RunRequest
    from automem.engine.structure.registry import resolve_structure

    version = resolve_structure(log, p.env, p.structure, p.policy)[1]
    return RunRequest(env=p.env, task=resolve_task(p.env, None), episodes=1, max_steps=p.max_steps, seed=0,
                      policy=p.policy, memory_policy=None, structure=version)


def _play_base(log: Any, data: Path, p: Protocol) -> dict[str, list[str]]:
    from automem.engine.evaluation import play_seeds
    from automem.engine.rollout.players import Local

    player, req = Local(p.concurrency, bar=True), _request(log, p)
    return {name: play_seeds(log, data, req, list(p.seeds(start)), player).episodes
            for name, start in (("heldout", p.heldout_start), ("train", p.train_start), ("select", p.select_start))}


def _progression(log: Any, episodes: list[str] | tuple[str, ...]) -> list[float]:
    """Per episode its final progression (0 for one that did not end), as the loop's sides count it."""
    from automem.engine.log import last_event
    from automem.schemas.events import EpisodeEnded
    from automem.schemas.streams import episode_stream

    return [last.progression if isinstance(last := last_event(log, episode_stream(ep)), EpisodeEnded) else 0.0
            for ep in episodes]


def _point(log: Any, it: int, episodes: list[str] | tuple[str, ...], baseline: list[float],
           figures: dict[str, float]) -> dict[str, Any]:
    from automem.engine.evaluation.paired import interval

    prog = _progression(log, episodes)
    diffs = [round(a - b, 6) for a, b in zip(prog, baseline)]
    lo, hi = interval(prog, LABEL)
    dlo, dhi = interval(diffs, LABEL + "/difference")
    return {"iteration": it, "mean_progression": mean(prog), "low": lo, "high": hi, "progression": prog,
            "difference": mean(diffs), "difference_low": dlo, "difference_high": dhi,
            "figures": {k.removeprefix("heldout."): v for k, v in figures.items()
                        if k not in ("heldout.mean_progression", "heldout.low", "heldout.high")}}  # with .low/.high


def _arm(log: Any, data: Path, p: Protocol, arm: str, base_eps: dict[str, list[str]],
         say: Callable[[str], None]) -> dict[str, Any]:
    from automem.engine.evaluation import play_seeds
    from automem.engine.loop import loop_id, run_loop
    from automem.engine.loop.records import done, figures
    from automem.engine.loop.table import loop_events
    from automem.engine.policy.spec import make_policy
    from automem.engine.rollout.players import Local

    before = set(log.streams("ep"))
    loops = ARMS[arm]
    if not loops:  # no learning: the baseline as a loop's baseline stage would play it (found stored)
        side = play_seeds(log, data, _request(log, p), list(p.seeds(p.heldout_start)), Local(p.concurrency, bar=True))
        from automem.engine.evaluation.proficiency import mean_figures

        prog = _progression(log, side.episodes)
        proficiency = {f"heldout.{k}": v for k, v in mean_figures(side.figures).items()}
        return {"loops": [], "loop": None, "baseline_reused": sum(e in base_eps["heldout"] for e in side.episodes),
                "reused_figure": side.reused, "new_episodes": len(set(log.streams("ep")) - before),
                "curve": [_point(log, 0, side.episodes, prog, proficiency)], "iterations": [], "invalid_proposals": 0,
                "invalid_reasons": {},
                "proposals": 0, "accepted": 0, "promoted": 0,
                "ratio": _ratio(mean(prog), mean(prog))}
    settings = p.settings(loops)
    name = loop_id(settings)
    run_loop(log, data, log, settings, name, p.iterations, lambda: make_policy(settings.reviewer),
             lambda line: say(f"  [{arm}] {line}"), concurrency=p.concurrency)
    events = loop_events(log, name)
    by = {it: done(events, it) for it in range(1, p.iterations + 1)}
    baseline = by[1].baseline
    assert baseline is not None, "the loop's first iteration has no baseline stage"
    base_prog = _progression(log, baseline.episodes)
    curve = [_point(log, 0, baseline.episodes, base_prog, figures(baseline))]
    rows = []
    for it, d in by.items():
        report, rollouts = d.report, d.rollouts
        assert report is not None and rollouts is not None, f"iteration {it} is not finished"
        curve.append(_point(log, it, report.episodes, base_prog, figures(report)))
        row: dict[str, Any] = {"iteration": it, "rollouts_reused": rollouts.reused, "structure": report.structure,
                               "model": report.model or "base"}
        if d.loop1 is not None:
            l1 = d.loop1
            row["loop1"] = {"accepted": l1.accepted, "valid": l1.proposal.valid, "reason": l1.proposal.reason[:300],
                            **{k: v for k, v in figures(l1).items() if k.startswith("select.")}}
        if d.train is not None and d.dataset is not None and d.evaluate is not None:
            ev = d.evaluate
            row["loop2"] = {"examples": d.dataset.examples, "loss": d.train.loss, "candidate": ev.candidate,
                            "promoted": ev.promoted, "decision": ev.decision[:300], **figures(ev)}
        rows.append(row)
    proposals = [r["loop1"] for r in rows if "loop1" in r]
    for prev, row in zip(rows, rows[1:]):  # greedy decoding, nothing changed: the same rollouts, dataset and version
        row["repeats_previous"] = (row["rollouts_reused"] == len(settings.train_seeds)
                                   and row["structure"] == prev["structure"] and row["model"] == prev["model"]
                                   and row.get("loop2", {}).get("candidate") == prev.get("loop2", {}).get("candidate"))
    reasons: dict[str, int] = {}
    for x in proposals:
        if not x["valid"]:
            reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
    return {"loops": list(loops), "loop": name,
            "baseline_reused": sum(e in base_eps["heldout"] for e in baseline.episodes),
            "new_episodes": len(set(log.streams("ep")) - before), "curve": curve, "iterations": rows,
            "proposals": len(proposals), "invalid_proposals": sum(not x["valid"] for x in proposals),
            "invalid_reasons": reasons,
            "accepted": sum(x["accepted"] for x in proposals),
            "promoted": sum(r["loop2"]["promoted"] for r in rows if "loop2" in r),
            "ratio": _ratio(curve[-1]["mean_progression"], curve[0]["mean_progression"])}


def finding(doc: dict[str, Any]) -> str:
    """One honest sentence or three from the figures (nothing here is written in advance)."""
    arms = doc["arms"]
    base = next(iter(arms.values()))["curve"][0]
    parts = [f"baseline held-out mean progression {base['mean_progression']:g} "
             f"[{base['low']:g}, {base['high']:g}] on {len(base['progression'])} seeds"]
    gains = []
    for name, a in arms.items():
        if not a["loops"]:
            continue
        last = a["curve"][-1]
        if last["difference_low"] > 0:
            gains.append(name)
        parts.append(f"{name}: final {last['mean_progression']:g}, difference {last['difference']:+g} "
                     f"[{last['difference_low']:+g}, {last['difference_high']:+g}], "
                     f"{a['accepted']} of {a['proposals']} proposals accepted ({a['invalid_proposals']} invalid), "
                     f"{a['promoted']} promoted")
    if gains:
        head = f"measurable held-out gain (difference interval above 0) in: {', '.join(gains)}"
    else:
        head = "no measurable gain: no arm's final held-out difference from the baseline has an interval above 0"
    reasons = []
    learning = [a for a in arms.values() if a["loops"]]
    if base["mean_progression"] == 0 and all(c["mean_progression"] == 0 for a in learning for c in a["curve"]):
        reasons.append("no episode in any arm made progress, so selection could not tell candidates apart")
    props = sum(a["proposals"] for a in learning)
    invalid = sum(a["invalid_proposals"] for a in learning)
    if props and invalid:
        why: dict[str, int] = {}
        for a in learning:
            for reason, n in a["invalid_reasons"].items():
                why[reason] = why.get(reason, 0) + n
        reasons.append(f"{invalid} of {props} reviewer proposals were invalid ("
                       + "; ".join(f"{n}x {r}" for r, n in sorted(why.items(), key=lambda kv: -kv[1])) + ")")
    trained = [r["loop2"] for a in learning for r in a["iterations"] if "loop2" in r]
    if trained and not any(t["promoted"] for t in trained):
        reasons.append(f"none of {len(trained)} trained versions was promoted "
                       f"(datasets of {', '.join(str(t['examples']) for t in trained)} examples)")
    later = [r for a in learning for r in a["iterations"] if r["iteration"] > 1]
    if later and all(r.get("repeats_previous") for r in later):
        reasons.append("with nothing accepted or promoted, every later iteration repeated the one before it "
                       "(greedy decoding: the same rollouts reused, the same dataset, the same version)")
    return "; ".join([head + (f" ({'; '.join(reasons)})" if reasons else ""), *parts])


def _ratio(final: float, baseline: float) -> float | None:
    return round(final / baseline, 3) if baseline else None



def scripted_reviewer(path: Path) -> str:
    """A `file:` reviewer for CPU checks: it proposes one structural change of v0-small (the fallback action)."""
    from automem.engine.structure.seeds import v0
    from automem.schemas.structure import encode_structure

    doc = encode_structure(msgspec.structs.replace(v0("crafter", small=True), fallback_action="Do")).decode()
    path.write_text(json.dumps({"text": f"Act when unsure.\n<|PROPOSAL|>{doc}"}) + "\n")
    return f"file:{path}"
