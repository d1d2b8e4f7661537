"""The baselines the memory agent is compared with: BALROG's naive agent and the bare observation.

`history` (BALROG's naive agent, balrog/agents/naive.py with prompt_builder/history.py):
the instruction prompt as the first user message, then the last N observation/action
pairs (a past observation as "Observation:\\n" + its long-term text, a past action as the
model's own cleaned answer, valid or not), then "Current Observation:\\n" + the short-term
text + the long-term text, with the naive instruction appended. The answer, stripped and
reduced to letters, whitespace and colons, must be exactly an allowed action; otherwise
BALROG's default action runs, the step counts invalid, and the next observation says so.
`none` is the same with no past pairs. Neither has memory files: one model call per step.
"""

from __future__ import annotations

from collections import deque
from typing import Generator

from automem.engine.agent import instructions, prompts
from automem.engine.agent.episode import Call, Episode, EpisodeSpec, _env_step, _invalid
from automem.engine.envs.base import StepResult
from automem.engine.log.port import EventLog
from automem.engine.policy.base import Completion, Policy
from automem.schemas.events import EnvFacts

# One answer names one action (the longest is five tokens); BALROG allows 8192 tokens, but
# any text beyond the action name makes the answer invalid, so a longer budget changes nothing.
ACT_MAX_TOKENS = 64


class BaselineEpisode(Episode):
    """An episode of the `history` or `none` agent: the memory agent's loop, one call per step."""

    def __init__(self, log: EventLog, spec: EpisodeSpec, policy: Policy, engine_version: str) -> None:
        super().__init__(log, spec, policy, None, engine_version)
        env = spec.env
        self.instruction = instructions.instruction(env.name, env.task)
        self.allowed = instructions.allowed(env.name, env.task, self.actions)
        self.default = instructions.DEFAULT_ACTION[env.name]
        self.act_actions = tuple(a for a in self.actions if a in self.allowed)
        self.digests["act"] = prompts.PromptDigest(self.instruction, role="user")
        # BALROG's event window: 2N entries of observations and answers, the oldest dropped first
        self.window: deque[tuple[str, str]] = deque(maxlen=2 * spec.agent.history or 1)
        self.feedback = ""  # the invalid-answer notice the next observation starts with

    def shape(self, phase: str, last_turn: bool = True) -> tuple[str, tuple[str, ...], int]:
        return "", (), ACT_MAX_TOKENS

    def begin(self, facts: EnvFacts) -> None:
        """No memory to seed."""

    def decide(self, step: int, observation: str) -> Generator[Call, Completion, str | None]:
        long_term, short_term = self.spec.env.contexts()
        long_term = self.feedback + long_term
        messages = [{"role": "user", "content": self.instruction}]
        if self.spec.agent.kind == "history":
            self.window.append(("user", long_term))
            past = list(self.window)[:-1]
            messages += [{"role": role, "content": "Observation:\n" + text if role == "user" else text}
                         for role, text in past]
        current = "Current Observation:\n" + (short_term + "\n" if short_term else "") + long_term
        messages.append({"role": "user", "content": current + "\n\n" + instructions.NAIVE})
        text = yield from self.call(self.policy, "agent", step, "act", 0, messages, self.act_actions)
        answer = instructions.answer_action(text)
        if answer:  # BALROG adds an empty answer to no history (`if prev_action:`)
            self.window.append(("assistant", answer))
        return answer

    def execute(self, requested: str | None) -> StepResult:
        if requested in self.allowed:
            self.feedback = ""
            return _env_step(self.spec.env, requested)
        self.feedback = ("\n\nYour previous output did not contain a valid action. Defaulted to action: "
                         f"{self.default}\n\nObservation:\n")
        return _invalid(_env_step(self.spec.env, self.default), f"{requested!r} is not one of the actions; "
                        f"{self.default} was executed instead")

    def after(self, step: int, result: StepResult, requested: str | None) -> None:
        """Nothing to remember: the window keeps the history."""


def make_episode(log: EventLog, spec: EpisodeSpec, policy: Policy, memory_policy: Policy | None,
                 engine_version: str) -> Episode:
    """The episode of the agent `spec.agent` names (a memory policy is for the memory agent only)."""
    if spec.agent.has_memory:
        return Episode(log, spec, policy, memory_policy, engine_version)
    return BaselineEpisode(log, spec, policy, engine_version)
