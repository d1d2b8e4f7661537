"""Which agent plays an episode: the memory agent, or a baseline to compare it with.

Recorded in `EpisodeStarted` (and in rollout requests), so replay re-runs the same agent
and every figure can say which agent it is about. `observation` picks the observation
text: automem's own, or `balrog`, what BALROG's language wrappers render, for figures
that sit next to BALROG's.
"""

from __future__ import annotations

import sys

import msgspec

from automem.schemas.errors import UserError

# memory: LOG/PLAN over memory files; history: BALROG's naive agent (the last N
# observation/action pairs in context, no memory); none: the current observation only.
AGENT_KINDS = ("memory", "history", "none")
OBSERVATIONS = ("automem", "balrog")
MAX_HISTORY = 256  # observation/action pairs in one context: beyond it no model's window holds them
BALROG_HISTORY = 16  # BALROG's max_text_history, the paper's baseline


class AgentSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    kind: str = "memory"
    history: int = 0  # history: the observation/action pairs kept in context
    observation: str = "automem"

    def __post_init__(self) -> None:
        """Interned names: msgspec omits a default by identity, so a spec that crossed a
        process (unpickled strings) would otherwise encode `memory` where a local one omits it,
        and the same episode would be recorded in two ways."""
        msgspec.structs.force_setattr(self, "kind", sys.intern(self.kind))
        msgspec.structs.force_setattr(self, "observation", sys.intern(self.observation))

    @property
    def has_memory(self) -> bool:
        """Memory figures (ops, probes, audits of claims) mean something for this agent."""
        return self.kind == "memory"

    def label(self) -> str:
        """A short name for tables: memory, history-16, none (+ :balrog for that text)."""
        name = f"history-{self.history}" if self.kind == "history" else self.kind
        return name + (f":{self.observation}" if self.observation != "automem" else "")


MEMORY = AgentSpec()


def parse_label(text: str) -> AgentSpec:
    """The agent a label names (`history-16`, `none`, `memory`, each maybe `:balrog`), checked:
    the inverse of `AgentSpec.label`."""
    name, _, observation = text.partition(":")
    kind, _, count = name.partition("-")
    if count and (kind != "history" or not count.isdigit()):
        raise UserError(f"bad agent {text!r}: memory, none or history-N, maybe with :balrog")
    return agent_spec(kind, int(count) if count else None, observation or "automem")


def check_format(observation: str) -> str:
    if observation not in OBSERVATIONS:
        raise UserError(f"unknown observation format {observation!r}: choose one of {', '.join(OBSERVATIONS)}")
    return observation


def agent_spec(kind: str, history: int | None = None, observation: str = "automem") -> AgentSpec:
    """The checked spec of `--agent KIND [--history N] [--observation FORMAT]`; UserError
    naming the valid choices otherwise."""
    if kind not in AGENT_KINDS:
        raise UserError(f"unknown agent {kind!r}: choose one of {', '.join(AGENT_KINDS)}")
    check_format(observation)
    if kind != "history":
        if history is not None:
            raise UserError(f"--history is for --agent history (the {kind} agent keeps no history window)")
        return AgentSpec(kind=kind, observation=observation)
    n = BALROG_HISTORY if history is None else history
    if not 1 <= n <= MAX_HISTORY:
        raise UserError(f"--history must be 1 to {MAX_HISTORY} observation/action pairs, got {n} "
                        "(use --agent none for no history)")
    return AgentSpec(kind=kind, history=n, observation=observation)
