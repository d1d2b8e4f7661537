"""`automem dataset build`: scored decisions -> a content-addressed chat dataset, announced in the log.

Select (pure filters), clean each answer (the fixed post-processing), rebuild the
conversations by replay, then write `examples.jsonl` and `manifest.json` under
DATA/datasets/<id>/, where the id is a hash of the manifest (which holds the examples'
sha256): the same selection over the same store gives the same id and the same bytes,
and a `DatasetBuilt` event on `dataset/<id>` is appended once.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import msgspec
from tqdm import tqdm

from automem.engine.agent.parser import parse, vocabulary
from automem.engine.dataset.examples import (
    NOT_REPLAYABLE,
    Example,
    answers,
    rebuild,
    target,
)
from automem.engine.dataset.postprocess import Rejection
from automem.engine.dataset.select import (
    Decision,
    Funnel,
    Key,
    Rank,
    Selection,
    balanced,
    best_first,
    by_env,
    by_score,
    capped,
    distinct,
    drawn,
    top_episodes,
)
from automem.engine.episodes.replay import recorded_episode
from automem.engine.episodes.summary import EpisodeSummary, summarize
from automem.engine.files import room, scratch, settle, writing
from automem.engine.log.port import EventLog, append_once
from automem.schemas.errors import UserError
from automem.schemas.events import DatasetBuilt, DecisionScored
from automem.schemas.streams import dataset_stream
from automem.schemas.structure import Structure

FORMAT = "chat-jsonl"  # one {"messages": [...]} per line: TRL, LLaMA-Factory and `datasets` read it as is


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """What a dataset holds and how it was chosen; no wall-clock time, so it is content."""

    format: str
    scorer: str
    selection: dict[str, object]  # Selection.recorded()
    examples: int
    sha256: str  # of examples.jsonl
    episodes: list[str]
    structures: list[str]
    models: list[str]  # the models that produced the answers
    counts: dict[str, dict[str, int]]  # per phase, per game, per memory command kind
    scored: int  # decisions of this scorer the selection started from
    removed: dict[str, int]
    rejected: dict[str, int]
    decisions: list[Decision]  # in the order of examples.jsonl, without their answers (the examples hold them)


class DatasetResult(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str
    examples: int
    path: str
    manifest: str
    sha256: str
    scorer: str
    episodes: int
    counts: dict[str, dict[str, int]]
    scored: int
    removed: dict[str, int]
    rejected: dict[str, int]
    new: bool  # False: the same dataset had been built before; nothing was written


PROBES = "probes"  # the scorer "probes": each episode's newest probe credit (its versions are per episode and run)


def scores(log: EventLog, scorer: str | None) -> tuple[str, list[DecisionScored]]:
    """The answer-level scores of one scorer version; by default the newest rule scorer's
    (the version of the rule-scored event at the highest log offset); `probes`: every
    episode's newest probe-credit version."""
    found = [(r.offset, r.event) for stream in log.streams("score") for r in log.read_stream(stream)
             if isinstance(r.event, DecisionScored)]
    if not found:
        raise UserError("no DecisionScored events in this store: run `automem score` first")
    if scorer is None:
        scorer = max(found, key=lambda f: (f[1].rule == "rules", f[0]))[1].scorer
    newest: dict[str, str] = {}  # episode -> its newest probe-credit version (found is in offset order per stream)
    if scorer == PROBES:
        for _, s in found:
            if s.rule == PROBES:
                newest[s.episode] = s.scorer
    chosen: dict[Key, DecisionScored] = {}
    for _, s in found:
        if (s.scorer == scorer or newest.get(s.episode) == s.scorer) and s.index is None:
            chosen.setdefault((s.episode, s.step, s.phase, s.turn), s)
    if not chosen:
        versions = ", ".join(sorted({s.scorer for _, s in found}))
        raise UserError(f"no DecisionScored events for scorer {scorer}: run `automem score` first "
                        f"(scorers in this store: {versions})")
    return scorer, list(chosen.values())


class Source(msgspec.Struct, frozen=True):
    """What an episode's examples need from it besides the replay: its structure and version."""

    version: str
    structure: Structure


def _by_episode(decisions: list[Decision]) -> dict[str, list[Decision]]:
    """Decisions grouped by episode, episodes in name order, each group in place order."""
    groups: dict[str, list[Decision]] = {}
    for d in sorted(decisions, key=lambda d: d.key):
        groups.setdefault(d.episode, []).append(d)
    return groups


def select(log: EventLog, selection: Selection, scored: list[DecisionScored]) -> tuple[Funnel, dict[str, Source]]:
    """The decisions to rebuild, each with its cleaned answer, and the episodes they come from.
    Episodes are read whole one at a time, and only those the episode-level filters keep."""
    summaries: dict[str, EpisodeSummary] = {}
    for episode in sorted({s.episode for s in scored}):
        try:
            summaries[episode] = summarize(log, episode)
        except UserError:
            continue
    funnel = Funnel([Decision(episode=s.episode, step=s.step, phase=s.phase, turn=s.turn, score=s.score,
                              env=summaries[s.episode].env if s.episode in summaries else "") for s in scored])
    funnel.refuse({d.key: NOT_REPLAYABLE for d in funnel.kept if d.episode not in summaries})
    if selection.env is not None:
        funnel.apply("env", by_env(funnel.kept, selection.env))
    if selection.seeds is not None:
        seeds = set(selection.seeds)
        funnel.apply("seeds", [d for d in funnel.kept if summaries[d.episode].seed in seeds])
    if selection.top_episodes is not None:
        strength = {e: (s.progression, s.return_) for e, s in summaries.items()}
        funnel.apply("top episodes", top_episodes(funnel.kept, strength, selection.top_episodes))
    # cleaned before the score filters, so that --top is a fraction of the answers that can be examples at all
    sources: dict[str, Source] = {}
    refused: dict[Key, str] = {}
    answered: list[Decision] = []
    for episode, decisions in _by_episode(funnel.kept).items():
        try:
            run = recorded_episode(log, episode)
        except UserError:  # e.g. its structure is not in this log
            refused |= dict.fromkeys((d.key for d in decisions), NOT_REPLAYABLE)
            continue
        sources[episode] = Source(run.start.structure, run.structure)
        calls = answers(run)
        for d in decisions:
            out = target(run, calls.get(d.key))
            if isinstance(out, Rejection):
                refused[d.key] = out.reason
            else:
                answered.append(msgspec.structs.replace(d, answer=out, model=calls[d.key].model))
    funnel.refuse(refused)
    funnel.kept = answered
    rank: Rank
    if selection.sample is None:
        rank, limit = best_first, selection.max_examples
        funnel.apply("score", by_score(funnel.kept, selection.min_score, selection.top))
    else:
        rank, limit = drawn(selection.sample_seed), selection.sample
    funnel.apply("near-duplicates", distinct(funnel.kept, rank))
    if selection.balance:
        funnel.apply("balance", balanced(funnel.kept, rank))
    if limit is not None:
        funnel.apply("random draw" if selection.sample is not None else "max examples",
                     capped(funnel.kept, limit, selection.balance, rank))
    return funnel, sources


def selectable(log: EventLog, selection: Selection) -> int:
    """How many decisions `selection` keeps before their conversations are rebuilt (a rebuild
    may still refuse a few): what a loop counts while it collects rollouts."""
    selection.check()
    scorer, scored = scores(log, selection.scorer)
    funnel, _ = select(log, msgspec.structs.replace(selection, scorer=scorer), scored)
    return len(funnel.kept)


def rebuild_all(log: EventLog, funnel: Funnel) -> dict[Key, Example]:
    """Replay each episode once for its selected answers; refuse what does not rebuild exactly.
    The bar on stderr is drawn only when there is work, so an empty selection's error stays one line."""
    groups = _by_episode(funnel.kept)
    built: dict[Key, Example] = {}
    refused: dict[Key, str] = {}
    for episode, decisions in tqdm(groups.items(), desc="rebuilding", unit="episode", disable=not groups):
        for key, out in rebuild(log, episode, {d.key: d.answer for d in decisions}).items():
            if isinstance(out, Rejection):
                refused[key] = out.reason
            else:
                built[key] = out
    funnel.refuse(refused)
    return built


def _counts(funnel: Funnel, sources: dict[str, Source]) -> dict[str, dict[str, int]]:
    kinds: Counter[str] = Counter()
    for d in funnel.kept:
        kinds.update(c.kind for c in parse(d.answer, vocabulary(sources[d.episode].structure), d.phase).commands)
    return {"phase": dict(sorted(Counter(d.phase for d in funnel.kept).items())),
            "env": dict(sorted(Counter(d.env for d in funnel.kept).items())),
            "command": dict(sorted(kinds.items()))}


def _write(folder: Path, dataset: str, files: dict[str, bytes]) -> Path:
    """The dataset's folder with exactly these files, written by one rename (a crash leaves none half-written)."""
    root = folder / "datasets"
    target = root / dataset
    if target.is_dir():
        if all((target / name).is_file() and (target / name).read_bytes() == data for name, data in files.items()):
            return target
        raise UserError(f"{target} exists with other contents (a content-addressed dataset was changed); "
                        "remove that folder and build again")
    room(root, "the dataset", need=sum(map(len, files.values())))
    with writing(root, "the dataset"), scratch(root, "the dataset") as work:
        (work / dataset).mkdir()
        for name, data in files.items():
            with open(work / dataset / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        settle(work / dataset, target)  # a concurrent build of the same dataset may have got there first
    return target


def _announce(log: EventLog, event: DatasetBuilt) -> bool:
    """Append the event once per dataset id; False when it is already there."""
    return append_once(log, dataset_stream(event.dataset), event)


def build_dataset(log: EventLog, folder: Path, selection: Selection) -> DatasetResult:
    """Build (or find, when built before) the dataset `selection` names; `folder`: the store's data folder."""
    selection.check()
    folder = folder.resolve()
    if not log.streams("ep"):
        raise UserError("no episodes in this store: run `automem run` (then `automem score`) first")
    room(folder / "datasets", "the dataset")  # before the selection's work, not after it
    scorer, scored = scores(log, selection.scorer)
    selection = msgspec.structs.replace(selection, scorer=scorer)
    funnel, sources = select(log, selection, scored)
    built = rebuild_all(log, funnel)
    if not funnel.kept:
        raise UserError(f"the selection kept nothing of the {len(scored)} decisions scored by {scorer}: "
                        f"{funnel.story()}")
    lines = b"".join(msgspec.json.encode(built[d.key]) + b"\n" for d in funnel.kept)
    sha = hashlib.sha256(lines).hexdigest()
    episodes = sorted({d.episode for d in funnel.kept})
    counts = _counts(funnel, sources)
    manifest = Manifest(
        format=FORMAT, scorer=scorer, selection=selection.recorded(), examples=len(funnel.kept), sha256=sha, episodes=episodes,
        structures=sorted({sources[e].version for e in episodes}),
        models=sorted({d.model for d in funnel.kept}), counts=counts, scored=len(scored),
        removed=funnel.removed, rejected=dict(sorted(funnel.rejected.items())),
        decisions=[msgspec.structs.replace(d, answer="") for d in funnel.kept])
    document = msgspec.json.format(msgspec.json.encode(manifest)) + b"\n"
    dataset = hashlib.sha256(document).hexdigest()[:16]
    where = _write(folder, dataset, {"examples.jsonl": lines, "manifest.json": document})
    relative = f"datasets/{dataset}"
    params = {k: str(v) for k, v in msgspec.to_builtins(selection.recorded()).items() if v is not None}
    new = _announce(log, DatasetBuilt(dataset=dataset, examples=len(funnel.kept), sha256=sha,
                                      path=f"{relative}/examples.jsonl", episodes=tuple(episodes), scorer=scorer,
                                      manifest=f"{relative}/manifest.json", params=params))
    return DatasetResult(dataset=dataset, examples=len(funnel.kept), path=str(where / "examples.jsonl"),
                         manifest=str(where / "manifest.json"), sha256=sha, scorer=scorer, episodes=len(episodes),
                         counts=counts, scored=len(scored), removed=funnel.removed, rejected=manifest.rejected, new=new)
