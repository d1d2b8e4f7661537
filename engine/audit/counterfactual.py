"""Counterfactual: would the failure still happen without the wrong write?

The fork is a new episode in the log that names its parent, its fork step and the one
command it drops. Up to and including the answer that issued the wrong write it replays
the parent's recorded responses (the env follows from the same seed and actions); the
dropped command is not applied; from the next model call on, the live policy plays for
`horizon` more steps. The fork is then judged by the same failure rules.
"""

from __future__ import annotations

from automem.engine.agent.baseline import make_episode
from automem.engine.audit import failure
from automem.engine.audit.result import AuditResult, Counterfactual
from automem.engine.envs import make_env
from automem.engine.episodes.leases import episode_lease
from automem.engine.episodes.replay import (
    MemoryRole,
    RecordedPolicy,
    recorded_episode,
    recorded_sampling,
)
from automem.engine.log import ConflictError
from automem.engine.log.port import EventLog
from automem.engine.policy.base import Completion, Policy, PolicyRequest
from automem.engine.policy.sampling import Sampling
from automem.engine.rollout.run import finish
from automem.schemas import ids
from automem.schemas.errors import UserError
from automem.schemas.events import LLMCalled, OpRef, OutcomeObserved, StepTaken
from automem.schemas.streams import episode_stream
from automem.schemas.version import ENGINE_VERSION


class SplicedPolicy(RecordedPolicy):
    """The parent's recorded answers up to the fork, then a live policy."""

    def __init__(self, calls: list[LLMCalled], live: Policy) -> None:
        super().__init__(calls, live.name)
        self.live = live

    def for_episode(self, seed: int) -> SplicedPolicy:
        """The live policy's session for the fork (the fork is this object's one episode)."""
        self.live = self.live.for_episode(seed)
        return self

    def complete(self, request: PolicyRequest) -> Completion:
        if self.index < len(self.calls):
            return super().complete(request)
        return self.live.complete(request)


def _fork_id(log: EventLog, parent: str, step: int) -> str:
    n = 0
    while log.head(episode_stream(ids.fork_id(parent, step, n))):
        n += 1
    return ids.fork_id(parent, step, n)


def fork(log: EventLog, result: AuditResult, live: Policy, horizon: int | None = None,
         rules: failure.Rules = failure.Rules(), sampling: Sampling | None = None) -> Counterfactual:
    """Run the fork without `result.first_mistake` and say whether the failure recurs.

    The live policy samples as the parent did unless `sampling` says otherwise."""
    mistake, failed = result.first_mistake, result.failure
    if mistake is None or failed is None:
        raise UserError(f"nothing to fork: the audit of {result.episode} found no wrong memory write ({result.reason})")
    parent = recorded_episode(log, result.episode)
    start, calls = parent.start, parent.calls
    at = next(i for i, c in enumerate(calls) if (c.step, c.phase, c.turn) == (mistake.step, mistake.phase, mistake.turn))
    steps = horizon if horizon is not None else max(failed.step - mistake.step + rules.window, 10)
    if steps < 1:
        raise UserError(f"--horizon must be at least 1, got {steps}")
    dropped = start.dropped + (OpRef(mistake.step, mistake.phase, mistake.turn, mistake.index),)
    episode = _fork_id(log, result.episode, mistake.step)
    env = make_env(start.env, start.task, start.agent.observation)
    spec = parent.spec(env, episode=episode, max_steps=mistake.step + steps,
                       parent=result.episode, fork_step=mistake.step, dropped=dropped,
                       sampling=sampling or recorded_sampling(start))
    agent = SplicedPolicy(calls[: at + 1], live)
    memory = MemoryRole(agent, live.name) if "memory" in start.models else None  # one queue, then one live policy
    try:
        with episode_lease(log, episode):
            make_episode(log, spec, agent, memory, ENGINE_VERSION).run()
    except ConflictError as exc:
        raise UserError(f"another process wrote fork {episode} at the same time; run the audit again") from exc
    finally:
        spec.env.close()
    summary = finish(log, episode)
    forked = [r.event for r in log.read_stream(episode_stream(episode))]
    _check_prefix(calls[: at + 1], [e for e in forked if isinstance(e, LLMCalled)], episode)
    after = [e for e in forked if isinstance(e, StepTaken) and e.step >= mistake.step]
    found = failure.detect(after, [e for e in forked if isinstance(e, OutcomeObserved) and e.step >= mistake.step],
                           rules, None if failed.rule == "named" else failed.rule)
    recurs: bool | None = found is not None
    if found is not None:
        detail = f"{found.failure.rule} at step {found.failure.step}: {found.failure.detail}"
    elif summary.steps <= failed.step and summary.cause == "max_steps":
        recurs = None
        detail = (f"the fork stopped after {summary.steps} steps, before the parent's failure at step "
                  f"{failed.step}; give a longer --horizon")
    else:
        detail = f"no {failed.rule if failed.rule != 'named' else 'failure'} rule fired from step {mistake.step} " \
                 f"in {summary.steps} steps (parent failed at step {failed.step}: {failed.rule})"
    return Counterfactual(episode=episode, parent=result.episode, fork_step=mistake.step, horizon=steps,
                          steps=summary.steps, failure_recurs=recurs, detail=detail)


def _check_prefix(parent: list[LLMCalled], fork: list[LLMCalled], episode: str) -> None:
    """The fork must have asked exactly the parent's questions up to the fork point, and got the same answers."""
    key = lambda c: (c.step, c.phase, c.turn, c.role, c.prompt_digest, c.response)  # noqa: E731
    for i, (a, b) in enumerate(zip(parent, fork)):
        if key(a) != key(b):
            raise UserError(f"fork {episode} left its parent's path at model call {i} (step {b.step} {b.phase} turn "
                            f"{b.turn}) before the fork point; it is kept in the log for inspection, not judged")
    if len(fork) < len(parent):
        raise UserError(f"fork {episode} ended after {len(fork)} of the parent's {len(parent)} recorded calls")
