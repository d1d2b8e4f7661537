"""The request a run takes, and its one check.

`RunRequest.check()` is where a request is validated: the env and task, its seeds and
bounds (schemas/limits), the concurrency, and both policy specs parsed. What needs
the log (the structure, a model version's adapter) is resolved where the log is open.
"""

from __future__ import annotations

import msgspec

from automem.engine.envs.registry import resolve_task
from automem.engine.policy.sampling import GREEDY, Sampling
from automem.engine.policy.spec import PolicySpec, parse_spec
from automem.schemas.agent import MEMORY, AgentSpec, check_format
from automem.schemas.errors import UserError
from automem.schemas.limits import MAX_SEED, check_concurrency, check_seeds


class RunRequest(msgspec.Struct, frozen=True, kw_only=True):
    env: str
    task: str | None
    episodes: int
    max_steps: int
    seed: int
    policy: str
    memory_policy: str | None = None
    structure: str = "auto"
    workers: int = 1
    concurrency: int = 1  # episodes in flight per worker process
    sampling: Sampling = GREEDY
    bus: str | None = None
    data: str | None = None
    seeds: tuple[int, ...] = ()  # explicit seeds instead of seed, seed+1, ... (then `episodes` is their count)
    agent: AgentSpec = MEMORY  # which agent plays: the memory agent or a baseline

    def seed_of(self, i: int) -> int:
        """The seed of the run's i-th episode."""
        return self.seeds[i] if self.seeds else self.seed + i

    def check(self) -> CheckedRequest:
        """The request once every part of it that needs no log is known good; raises the
        one-line UserError of the first part that is not."""
        task = resolve_task(self.env, self.task)
        if self.seeds:
            if len(self.seeds) != self.episodes or not all(0 <= s <= MAX_SEED for s in self.seeds):
                raise UserError(f"explicit seeds must be {self.episodes}, each 0 to {MAX_SEED}")
        else:
            check_seeds(self.seed, self.episodes)
        check_concurrency(self.concurrency)
        if self.memory_policy is not None and not self.agent.has_memory:
            raise UserError(f"--memory-policy is for the memory agent: the {self.agent.kind} agent has no memory files")
        check_format(self.agent.observation)
        agent = parse_spec(self.policy)
        memory = parse_spec(self.memory_policy) if self.memory_policy is not None else None
        return CheckedRequest(req=self, task=task, agent=agent, memory=memory)


class CheckedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A checked RunRequest with what its check found: the task it plays, its parsed specs."""

    req: RunRequest
    task: str
    agent: PolicySpec
    memory: PolicySpec | None

    def specs(self) -> list[tuple[str, PolicySpec]]:
        """(spec string, parsed) of the agent and, when there is one, the memory model."""
        pairs = [(self.req.policy, self.agent)]
        return pairs + ([(self.req.memory_policy, self.memory)] if self.req.memory_policy and self.memory else [])
