"""What each loop stage produced, typed, and its one translation to and from LoopStageDone.

LoopStageDone keeps the schema every store was written with (string outputs, `"true"` and
`"false"` for flags, dotted float figures such as `select.low`); `encode` and `decode` here
are the only code that writes or reads those fields, so the rest of the loop sees records.
"""

from __future__ import annotations

from typing import Union

import msgspec

from automem.schemas.events import LoopStageDone


class Interval(msgspec.Struct, frozen=True):
    """A mean with its 95% bootstrap interval."""

    value: float
    lo: float
    hi: float


class Paired(msgspec.Struct, frozen=True):
    """A candidate against what it challenged on the same seeds; the difference's interval is paired."""

    candidate: float
    against: float
    difference: Interval


class Proposal(msgspec.Struct, frozen=True):
    """The reviewer's proposal: invalid ones (a small model's usual answer) are counted, not hidden."""

    valid: bool
    reason: str  # why it was accepted or rejected


class Rollouts(msgspec.Struct, frozen=True, kw_only=True):
    structure: str
    model: str
    episodes: tuple[str, ...]
    reused: int
    mean_progression: float
    seeds: tuple[int, ...] = ()  # the training seeds played (recorded since rollouts sample fresh ones)
    selectable: int | None = None  # decisions the loop's selection keeps, when it collected to a minimum
    stopped: str = ""  # why collecting stopped: "minimum" reached, or the "budget" ran out


class Scores(msgspec.Struct, frozen=True, kw_only=True):
    episodes: tuple[str, ...]
    scorer: str
    decisions: int
    pending: int | None = None  # the embedded scorer's count; the bus's scorer reports none


class Loop1(msgspec.Struct, frozen=True, kw_only=True):
    structure: str  # in force after the decision
    candidate: str  # "" for an invalid proposal
    parent: str
    accepted: bool
    proposal: Proposal
    select: Paired | None = None  # on the selection seeds
    heldout: Paired | None = None  # on the held-out seeds


class Dataset(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str
    sha256: str
    scorer: str
    examples: int
    episodes: int


class Trained(msgspec.Struct, frozen=True, kw_only=True):
    model_version: str
    dataset: str
    new: bool  # False: the same version found, not trained again
    loss: float
    steps: int
    tokens: int


class Evaluated(msgspec.Struct, frozen=True, kw_only=True):
    candidate: str
    incumbent: str
    promoted: bool
    model: str  # in force after the decision
    decision: str
    select: Paired | None = None


class Heldout(msgspec.Struct, frozen=True, kw_only=True):
    """The held-out seeds under one structure and model: the baseline stage and the report stage."""

    structure: str
    model: str
    episodes: tuple[str, ...]
    progression: Interval
    figures: dict[str, Interval | float] = {}  # each proficiency figure; a bare float: recorded by 0.4.0, without one
    agent: str = ""  # the compare stage's: the baseline agent that played (history-16, none)


StageResult = Union[Rollouts, Scores, Loop1, Dataset, Trained, Evaluated, Heldout]
KINDS: dict[str, type[StageResult]] = {"baseline": Heldout, "compare": Heldout, "rollouts": Rollouts, "scores": Scores,
                                       "loop1": Loop1, "dataset": Dataset, "train": Trained, "evaluate": Evaluated, "report": Heldout}


class Done(msgspec.Struct, frozen=True, kw_only=True):
    """One iteration's stage results so far, by stage (None until that stage is done)."""

    stages: tuple[str, ...] = ()  # in the order they were done
    baseline: Heldout | None = None
    compare: Heldout | None = None
    rollouts: Rollouts | None = None
    scores: Scores | None = None
    loop1: Loop1 | None = None
    dataset: Dataset | None = None
    train: Trained | None = None
    evaluate: Evaluated | None = None
    report: Heldout | None = None


# ------------------------------------------------------------------- to the event


def _flag(value: bool) -> str:
    return str(value).lower()


def _paired(label: str, against: str, p: Paired | None) -> dict[str, float]:
    if p is None:
        return {}
    return {f"{label}.candidate": p.candidate, f"{label}.{against}": p.against, f"{label}.difference": p.difference.value,
            f"{label}.low": p.difference.lo, f"{label}.high": p.difference.hi}


def _outputs(r: StageResult) -> dict[str, str]:
    if isinstance(r, Heldout) and r.agent:
        return {"structure": r.structure, "model": r.model, "agent": r.agent}
    if isinstance(r, Rollouts):
        return {"structure": r.structure, "model": r.model, **({"seeds": ",".join(map(str, r.seeds))} if r.seeds else {}),
                **({"stopped": r.stopped} if r.stopped else {})}
    if isinstance(r, Heldout):
        return {"structure": r.structure, "model": r.model}
    if isinstance(r, Scores):
        return {"scorer": r.scorer}
    if isinstance(r, Loop1):
        return {"structure": r.structure, "candidate": r.candidate, "parent": r.parent, "accepted": _flag(r.accepted),
                "valid": _flag(r.proposal.valid), "reason": r.proposal.reason}
    if isinstance(r, Dataset):
        return {"dataset": r.dataset, "sha256": r.sha256, "scorer": r.scorer}
    if isinstance(r, Trained):
        return {"model_version": r.model_version, "dataset": r.dataset, "new": _flag(r.new)}
    return {"candidate": r.candidate, "incumbent": r.incumbent, "promoted": _flag(r.promoted), "model": r.model,
            "decision": r.decision}


def figures(r: StageResult | None) -> dict[str, float]:
    """The record's figures under the dotted names the events and `automem loop status --json` share."""
    if r is None:
        return {}
    if isinstance(r, Rollouts):
        return {"reused": float(r.reused), "mean_progression": r.mean_progression,
                **({} if r.selectable is None else {"selectable": float(r.selectable)})}
    if isinstance(r, Scores):
        return {"decisions": float(r.decisions), **({} if r.pending is None else {"pending": float(r.pending)})}
    if isinstance(r, Loop1):
        return _paired("select", "parent", r.select) | _paired("heldout", "parent", r.heldout)
    if isinstance(r, Dataset):
        return {"examples": float(r.examples), "episodes": float(r.episodes)}
    if isinstance(r, Trained):
        return {"loss": r.loss, "steps": float(r.steps), "tokens": float(r.tokens)}
    if isinstance(r, Evaluated):
        return _paired("select", "incumbent", r.select)
    out = {"heldout.mean_progression": r.progression.value, "heldout.low": r.progression.lo,
           "heldout.high": r.progression.hi}
    for name, f in r.figures.items():
        out |= ({f"heldout.{name}": f.value, f"heldout.{name}.low": f.lo, f"heldout.{name}.high": f.hi}
                if isinstance(f, Interval) else {f"heldout.{name}": f})
    return out


def encode(iteration: int, stage: str, r: StageResult) -> LoopStageDone:
    """The event that records `r` as `stage` of `iteration`."""
    episodes = r.episodes if isinstance(r, (Rollouts, Scores, Heldout)) else ()
    return LoopStageDone(iteration=iteration, stage=stage, episodes=episodes, outputs=_outputs(r), figures=figures(r))


def brief(r: StageResult) -> str:
    """The record in one parenthesis, as the driver's progress line shows it."""
    episodes = r.episodes if isinstance(r, (Rollouts, Scores, Heldout)) else ()
    parts = [f"{len(episodes)} episodes"] if episodes else []
    parts += [f"{k} {v}" for k, v in _outputs(r).items() if k not in ("reason", "decision", "seeds") and v]
    return "(" + ", ".join(parts) + ")"


# ----------------------------------------------------------------- from the event


def _read_paired(f: dict[str, float], label: str, against: str) -> Paired | None:
    if f"{label}.candidate" not in f:
        return None
    return Paired(f[f"{label}.candidate"], f[f"{label}.{against}"],
                  Interval(f[f"{label}.difference"], f[f"{label}.low"], f[f"{label}.high"]))


def _read_heldout(e: LoopStageDone) -> Heldout:
    f = e.figures
    names = [k.removeprefix("heldout.") for k in f
             if k not in ("heldout.mean_progression", "heldout.low", "heldout.high") and not k.endswith((".low", ".high"))]
    return Heldout(structure=e.outputs["structure"], model=e.outputs["model"], episodes=e.episodes,
                   progression=Interval(f["heldout.mean_progression"], f["heldout.low"], f["heldout.high"]),
                   figures={n: Interval(f[f"heldout.{n}"], f[f"heldout.{n}.low"], f[f"heldout.{n}.high"])
                            if f"heldout.{n}.low" in f else f[f"heldout.{n}"] for n in names},
                   agent=e.outputs.get("agent", ""))


def decode(e: LoopStageDone) -> StageResult:
    """The record a LoopStageDone holds, by its stage."""
    o, f, kind = e.outputs, e.figures, KINDS[e.stage]
    if kind is Heldout:
        return _read_heldout(e)
    if kind is Rollouts:
        return Rollouts(structure=o["structure"], model=o["model"], episodes=e.episodes, reused=int(f["reused"]),
                        mean_progression=f["mean_progression"],
                        seeds=tuple(int(s) for s in o["seeds"].split(",")) if o.get("seeds") else (),
                        selectable=int(f["selectable"]) if "selectable" in f else None, stopped=o.get("stopped", ""))
    if kind is Scores:
        return Scores(episodes=e.episodes, scorer=o["scorer"], decisions=int(f["decisions"]),
                      pending=int(f["pending"]) if "pending" in f else None)
    if kind is Loop1:
        return Loop1(structure=o["structure"], candidate=o.get("candidate", ""), parent=o.get("parent", ""),
                     accepted=o.get("accepted") == "true",
                     proposal=Proposal(o.get("valid") == "true", o.get("reason", "")),
                     select=_read_paired(f, "select", "parent"), heldout=_read_paired(f, "heldout", "parent"))
    if kind is Dataset:
        return Dataset(dataset=o["dataset"], sha256=o["sha256"], scorer=o["scorer"], examples=int(f["examples"]),
                       episodes=int(f["episodes"]))
    if kind is Trained:
        return Trained(model_version=o["model_version"], dataset=o["dataset"], new=o.get("new") == "true",
                       loss=f["loss"], steps=int(f["steps"]), tokens=int(f["tokens"]))
    return Evaluated(candidate=o["candidate"], incumbent=o["incumbent"], promoted=o.get("promoted") == "true",
                     model=o["model"], decision=o.get("decision", ""), select=_read_paired(f, "select", "incumbent"))


def done(events: list[object], iteration: int) -> Done:
    """The done stages of one iteration, as records."""
    found = {e.stage: decode(e) for e in events if isinstance(e, LoopStageDone) and e.iteration == iteration}
    return msgspec.structs.replace(Done(stages=tuple(found)), **found)
