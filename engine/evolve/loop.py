"""Loop 1: the reviewer revises the structure; a candidate is kept only when it measurably improves.

Per iteration: episodes under the current structure on the training seeds (reused when
already stored), the reviewer's conversation over them, the proposal validated (one
repair attempt with the reason), then the candidate and its parent on the selection
seeds (strict improvement of mean progression accepts it) and on the held-out report
seeds (reported only, never used to decide). Every step is an event on the env's
structure stream, so the history is in the log and `--structure auto` follows it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from automem.engine.envs import GAMES, resolve_task
from automem.engine.evaluation import (
    ProbeFigure,
    Side,
    play_seeds,
    side_summary,
    unclean,
)
from automem.engine.evolve import review
from automem.engine.evolve.validate import check_proposal
from automem.engine.evolve.view import episode_digest, tools
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.port import EventLog
from automem.engine.policy.base import ModelError, Policy, PolicyRequest, storable
from automem.engine.policy.sampling import Sampling
from automem.engine.rollout.players import Local, Player
from automem.engine.rollout.request import RunRequest
from automem.engine.structure.registry import (
    model_class,
    register_structure,
    resolve_structure,
)
from automem.schemas.errors import UserError
from automem.schemas.events import (
    StructureAccepted,
    StructureEvaluated,
    StructureRejected,
)
from automem.schemas.ids import invalid_proposal_id
from automem.schemas.streams import structure_stream
from automem.schemas.structure import Structure


class Budget(msgspec.Struct, frozen=True):
    """What one reviewer conversation may take: answers (look-ups included) and tokens per answer
    (a whole structure document needs a few thousand)."""

    turns: int = 6
    tokens: int = 4096


class Iteration(msgspec.Struct, kw_only=True):
    """One iteration, as `automem evolve --json` reports it."""

    candidate: str | None  # its version, None when no valid document came
    parent: str
    valid: bool
    reason: str
    select: dict[str, object] = {}
    report: dict[str, object] = {}
    accepted: bool = False


class EvolveResult(msgspec.Struct, kw_only=True):
    iterations: list[Iteration]
    accepted: list[str]
    current: str  # the structure in force at the end


def _append(log: EventLog, env: str, event: object) -> None:
    stream = structure_stream(env)
    log.append(stream, log.head(stream), [event])  # type: ignore[list-item]


def reject_invalid(log: EventLog, env: str, reason: str) -> None:
    """Record a proposal that held no valid structure (the same reason, the same rejection)."""
    _append(log, env, StructureRejected(version=invalid_proposal_id(reason), reason=reason))


def _converse(reviewer: Policy, structure: Structure, digest: str, look: dict, budget: Budget,
              repair: str = "") -> tuple[str, bytes]:
    """The reviewer's turns up to its proposal: (analysis, document), or a UserError."""
    messages = [{"role": "system", "content": review.SYSTEM.replace("{game}", GAMES[structure.env])},
                {"role": "user", "content": review.first_message(structure, digest) + repair}]
    for _ in range(budget.turns):
        answer = storable(reviewer.complete(PolicyRequest(messages=tuple(messages), max_tokens=budget.tokens,
                                                          phase="review")).text)
        found = review.proposal(answer)
        if found is not None:
            return found
        asked = review.lookups(answer)
        feedback = review.answer_lookups(asked, look) if asked else (
            "No look-up and no proposal in that answer: look things up, or answer with <|PROPOSAL|> and the JSON.")
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": feedback}]
    raise UserError(f"the reviewer made no proposal in {budget.turns} turns")


def _evaluated(log: EventLog, env: str, version: str, side: Side, seeds: list[int], purpose: str) -> dict[str, object]:
    """Record how a structure did on a seed set; the side's summary, with its version."""
    summary = {"version": version, **msgspec.structs.asdict(side_summary(side))}
    _append(log, env, StructureEvaluated(version=version, seeds=tuple(seeds), episodes=tuple(side.episodes),
                                         mean_progression=summary["mean_progression"],  # type: ignore[arg-type]
                                         purpose=purpose, progression=tuple(side.progression),
                                         figures=summary["figures"]))  # type: ignore[arg-type]
    return summary


def evolve(log: EventLog, data: Path, store: LmdbLog | None, req: RunRequest, reviewer: Policy, iterations: int,
           train_seeds: list[int], select_seeds: list[int], report_seeds: list[int],
           budget: Budget = Budget(), player: Player | None = None, probe: ProbeFigure | None = None,
           review_sampling: Sampling | None = None) -> EvolveResult:
    """`iterations` rounds of review, each conversation within `budget`; sides played by `player`;
    `probe` adds probe accuracy to the selection and report figures; `review_sampling`: how
    the reviewed training episodes sample (a loop's sampled rollouts), `req`'s when None."""
    sets = {"training": set(train_seeds), "selection": set(select_seeds), "report": set(report_seeds)}
    for a, b in (("training", "selection"), ("training", "report"), ("selection", "report")):
        if sets[a] & sets[b]:
            raise UserError(f"the {a} and {b} seeds overlap ({', '.join(map(str, sorted(sets[a] & sets[b])))}): "
                            "keep training, selection and held-out seeds apart")
    req = msgspec.structs.replace(req, task=resolve_task(req.env, req.task))  # as episodes record it: stored ones match
    structure, version = resolve_structure(log, req.env, req.structure, req.policy)
    result = EvolveResult(iterations=[], accepted=[], current=version)
    player = player or Local()  # the rollout policies, loaded once for every side of every iteration
    for _ in range(iterations):
        current = msgspec.structs.replace(req, structure=version)
        sampled = current if review_sampling is None else msgspec.structs.replace(current, sampling=review_sampling)
        reviewed = play_seeds(log, data, sampled, train_seeds, player)
        digest = "\n".join(episode_digest(log, store, e) for e in reviewed.episodes)
        look = tools(log, store, reviewed.episodes)
        step = Iteration(candidate=None, parent=version, valid=False, reason="")
        result.iterations.append(step)
        try:
            candidate, rationale = _propose(reviewer, structure, digest, look, budget)
        except ModelError as exc:
            step.reason = f"the reviewer could not answer: {str(exc).splitlines()[0] if str(exc) else 'model error'}"
            if len(result.iterations) == 1:  # nothing could be done at all
                raise UserError(f"{step.reason}; nothing was proposed, {version} stays in force") from None
            break
        except UserError as exc:
            step.reason = str(exc)
            reject_invalid(log, req.env, step.reason)
            continue
        step.valid, step.candidate = True, register_structure(log, candidate, rationale, parent=version,
                                                              reviewer=reviewer.name)
        sides = {}
        for purpose, seeds in (("select", select_seeds), ("report", report_seeds)):
            for who, v in (("candidate", step.candidate), ("parent", version)):
                sides[purpose, who] = play_seeds(log, data, msgspec.structs.replace(req, structure=v), seeds, player,
                                                 probe)
        broken = unclean(log, sides["select", "candidate"]) or unclean(log, sides["select", "parent"])
        step.select = {who: _evaluated(log, req.env, v, sides["select", who], select_seeds, "select")
                       for who, v in (("candidate", step.candidate), ("parent", version))}
        step.report = {who: _evaluated(log, req.env, v, sides["report", who], report_seeds, "report")
                       for who, v in (("candidate", step.candidate), ("parent", version))}
        new, old = step.select["candidate"]["mean_progression"], step.select["parent"]["mean_progression"]  # type: ignore[index]
        if broken is None and new > old:  # type: ignore[operator]
            step.accepted, step.reason = True, f"mean progression on the selection seeds {new:.4f} > {old:.4f}"
            _append(log, req.env, StructureAccepted(version=step.candidate, mean_progression=new,  # type: ignore[arg-type]
                                                    baseline_progression=old, parent=version,  # type: ignore[arg-type]
                                                    model_class=model_class(req.policy)))
            result.accepted.append(step.candidate)
            structure, version = candidate, step.candidate
        else:
            step.reason = broken or f"no strict improvement on the selection seeds: {new:.4f} vs its parent's {old:.4f}"
            _append(log, req.env, StructureRejected(version=step.candidate, reason=step.reason))
    result.current = version
    return result


def _propose(reviewer: Policy, parent: Structure, digest: str, look: dict, budget: Budget) -> tuple[Structure, str]:
    """A valid candidate and its rationale; an invalid proposal gets one repair attempt with the reason."""
    analysis, document = _converse(reviewer, parent, digest, look, budget)
    try:
        return check_proposal(document, parent), analysis
    except UserError as exc:
        repair = (f"\n\nYour previous proposal was refused: {exc}. Answer again with <|PROPOSAL|> and a complete, "
                  "valid structure that fixes this.")
        analysis, document = _converse(reviewer, parent, digest, look, budget, repair)
        try:
            return check_proposal(document, parent), analysis
        except UserError as again:
            raise UserError(f"invalid proposal after one repair: {again}") from None

