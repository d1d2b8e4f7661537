"""The audit: when did the first memory mistake happen, and what is the evidence?

1. find the failure (failure.py), or take the step the user names;
2. walk provenance back from the decisions that led to it (provenance.py);
3. check the writes on that graph against the recorded env facts (findings.py);
4. report the earliest wrong write with its chain: write -> reads -> decisions -> failure.
Reads only the log; `counterfactual.fork` is the one part that writes (a new episode).
"""

from __future__ import annotations

from automem.engine.audit import failure, findings, provenance
from automem.engine.audit.provenance import Node, Trace
from automem.engine.audit.result import (
    AuditResult,
    Counterfactual,
    Failure,
    Link,
    Mistake,
)
from automem.engine.episodes.read import read_episode
from automem.engine.episodes.timeline import check_step
from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError
from automem.schemas.events import OutcomeObserved

__all__ = ["audit", "AuditResult", "Counterfactual", "Failure", "Link", "Mistake"]


def _link(trace: Trace, node: Node) -> Link:
    if node[0] == "d":
        _, step, phase, turn = node
        call = trace.calls[(step, phase, turn)]
        taken = trace.steps.get(step)
        did = f" -> took {taken.action!r}" if phase == "plan" and taken is not None else ""
        return Link(step, phase, turn, "decision", f"{call.response.strip()[:160]!r}{did}")
    op = trace.ops[node[1]]
    e = op.event
    if node[0] == "r":
        seen = ", ".join(f"{name}@{v}" for name, v in sorted(e.read_versions.items()))
        return Link(e.step, e.phase, e.turn, "read", f"{e.op.kind.upper()} {e.op.path or '*'} saw {seen}",
                    e.op.path, e.read_versions.get(e.op.path, ""))
    text = "|".join(e.op.args)
    return Link(e.step, e.phase, e.turn, "write", f"{e.op.kind.upper()} {e.op.path}|{text[:160]}",
                e.op.path, e.written_versions.get(e.op.path, ""))


def audit(log: EventLog, episode: str, failure_step: int | None = None,
          rules: failure.Rules = failure.Rules()) -> AuditResult:
    """Audit one episode of the log; `failure_step` names the failure instead of detecting it."""
    record = read_episode(log, episode)
    if not record.start.agent.has_memory:
        raise UserError(f"{episode} was played by the {record.start.agent.label()} agent, which keeps no memory: the "
                        "audit looks for memory mistakes (replay, show and report apply to it)")
    steps = record.steps
    outcomes = [e for e in record.events if isinstance(e, OutcomeObserved)]
    found: failure.Found | None
    if failure_step is not None:
        check_step(episode, steps[-1].step if steps else -1, failure_step, "--failure")
        found = failure.named(steps, failure_step, rules)
    else:
        found = failure.detect(steps, outcomes, rules)
    if found is None:
        return AuditResult(episode, None, None, [], "no failure rule fired (no death, lost item, run of invalid "
                                                    "actions, repeated scene or long unproductive streak); "
                                                    "name one with --failure STEP")
    trace = provenance.build(record.events, record.limits)
    decisions = [d for s in found.steps if (d := provenance.decision_of(trace, s, "plan")) is not None]
    pulled = provenance.walk(trace, decisions)
    first = findings.earliest(trace, pulled)
    fail_link = Link(found.failure.step, "", 0, "failure", f"{found.failure.rule}: {found.failure.detail}")
    if first is not None:
        start_node: Node = ("w", first.write.index)
        if first.via is not None:  # a lost line: reported through the read that missed it
            nodes = [start_node] + provenance.path(pulled, ("r", first.via))
        else:
            nodes = provenance.path(pulled, start_node)
        return AuditResult(episode, found.failure, findings.mistake(trace, first, record.start.dropped),
                           [_link(trace, n) for n in nodes] + [fail_link],
                           "the earliest wrong write among those that fed the failing decisions")
    reads = sum(n[0] == "r" for n in pulled)
    writes = sum(n[0] == "w" for n in pulled)
    chain = [_link(trace, ("d", *d)) for d in decisions] + [fail_link]
    if not decisions:
        reason = "no model decision was made in the steps before the failure: not a memory failure"
    elif reads == 0:
        reason = (f"the {len(decisions)} decision(s) before the failure were shown no memory content (prompts list "
                  "file names; their reads, if any, showed none): memory did not mislead them: not a memory failure")
    else:
        reason = (f"the {writes} write(s) behind the {reads} read(s) that fed the failing decisions agree with "
                  "the recorded env facts, or make no claim the facts can check: not a memory failure")
    return AuditResult(episode, found.failure, None, chain, reason)
