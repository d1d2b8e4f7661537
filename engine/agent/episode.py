"""The LOG/PLAN memory agent: one episode, every call, op and step written to the log.

Per step: LOG (from the second step on) lets the model record the outcome of the previous
action with memory commands until DONE, an answer with no command, or the turn budget;
PLAN allows read-only lookups and then one ACTION. A missing or invalid action falls
back to the structure's default and the failure is shown at the next LOG. The episode is
a pure function of (env, seed, structure, model responses): replay relies on it.

The episode is a step machine: `steps()` yields each model call it waits on and is sent
the answer, so one driver can keep many episodes in flight and batch their calls
(engine/rollout), while `run()` answers the calls one at a time.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Generator, NamedTuple

import msgspec

from automem.engine.agent import prompts
from automem.engine.agent.parser import (
    Parsed,
    action_index,
    parse,
    resolve_action,
    vocabulary,
)
from automem.engine.envs.base import StepResult, TextEnv
from automem.engine.log.port import EventLog
from automem.engine.memory import EMPTY, WRITE_KINDS, OpResult, apply, line_cap
from automem.engine.memory.derived import derived_ops
from automem.engine.policy.base import (
    Completion,
    ModelError,
    Policy,
    PolicyRequest,
    answer,
    storable,
)
from automem.engine.policy.sampling import GREEDY, Sampling, call_seed
from automem.schemas.agent import MEMORY, AgentSpec
from automem.schemas.events import (
    EnvFacts,
    EpisodeEnded,
    EpisodeStarted,
    LLMCalled,
    MemoryOp,
    MemoryOpApplied,
    OpRef,
    OutcomeObserved,
    StepTaken,
)
from automem.schemas.streams import episode_stream
from automem.schemas.structure import MemoryLimits, Structure, agent_limits


class EpisodeSpec:
    """Everything that defines an episode besides the model's answers."""

    def __init__(self, episode: str, env: TextEnv, seed: int, max_steps: int, structure: Structure, version: str,
                 parent: str | None = None, fork_step: int | None = None, dropped: tuple[OpRef, ...] = (),
                 sampling: Sampling = GREEDY, agent: AgentSpec = MEMORY) -> None:
        self.episode, self.env, self.seed, self.max_steps = episode, env, seed, max_steps
        self.structure, self.version = structure, version
        self.parent, self.fork_step, self.dropped = parent, fork_step, dropped
        self.sampling, self.agent = sampling, agent

    def started(self, models: dict[str, str], engine_version: str) -> EpisodeStarted:
        """The episode's first event: everything replay needs to play it again."""
        return EpisodeStarted(
            episode=self.episode, env=self.env.name, task=self.env.task, seed=self.seed, max_steps=self.max_steps,
            structure=self.version, models=models, engine_version=engine_version,
            parent=self.parent, fork_step=self.fork_step, dropped=self.dropped,
            temperature=self.sampling.temperature, top_p=self.sampling.top_p, agent=self.agent)


class Call(NamedTuple):
    """A model call an episode waits on: answered by `policy`, the episode's own session."""

    policy: Policy
    request: PolicyRequest


Machine = Generator[Call, Completion, EpisodeEnded]


class EnvCrashed(Exception):
    """The game itself raised: the episode ends with the cause recorded, other episodes go on."""


def advance(machine: Generator[Call, Completion, object], reply: Completion | ModelError) -> Call:
    """Hand a machine its answer (an error is raised inside it, where the episode records it);
    returns the next call it waits on. StopIteration carries its result."""
    return machine.throw(reply) if isinstance(reply, ModelError) else machine.send(reply)


def to_op(cmd: Parsed) -> MemoryOp:
    """A parsed command as a reducer op: the `file` field (else the command's fixed file) is
    the path, the rest are args."""
    path = next((f for p, f in zip(cmd.params, cmd.fields) if p == "file"), cmd.file)
    args = tuple(f for p, f in zip(cmd.params, cmd.fields) if p != "file")
    return MemoryOp(cmd.kind, path, args)


class Episode:
    """Runs one episode; `events` is the current step's batch, flushed once per step."""

    def __init__(self, log: EventLog, spec: EpisodeSpec, policy: Policy, memory_policy: Policy | None,
                 engine_version: str) -> None:
        self.log, self.spec, self.policy = log, spec, policy
        self.memory_policy = memory_policy or policy
        self.stream = episode_stream(spec.episode)
        self.seq = 0
        self.events: list = []
        self.memory = EMPTY
        self.memory_ops = 0
        self.engine_version = engine_version
        self.vocab = vocabulary(spec.structure)
        self.limits = agent_limits(spec.structure)  # the model's commands: derived files read-only
        self.engine_limits = msgspec.structs.replace(spec.structure.limits, read_only=())  # seeded and derived files
        self.actions = spec.env.valid_actions()
        self.action_index = action_index(self.actions)
        self.log_system, self.plan_system = prompts.system_prompts(spec.structure, self.actions)
        self.digests = {"log": prompts.PromptDigest(self.log_system), "plan": prompts.PromptDigest(self.plan_system)}
        self._files_of: object = None  # the memory state `_files` describes
        self._files: tuple[str, tuple[str, ...]] = ("", ())
        self._line_counts: dict[str, tuple[object, int]] = {}
        self.last = ""  # what the last action did, for the next LOG
        self.recent: deque[str] = deque(maxlen=spec.structure.recent_steps)

    def files(self) -> tuple[str, tuple[str, ...]]:
        """The memory files as prompts list them and as requests name them: once per state."""
        if self._files_of is not self.memory:
            self._files = (prompts.listing(self.memory, self._line_counts), tuple(sorted(self.memory.files)))
            self._files_of = self.memory
        return self._files

    # ------------------------------------------------------------------ plumbing

    def flush(self) -> None:
        if self.events:
            self.seq = self.log.append(self.stream, self.seq, self.events)
            self.events = []

    def shape(self, phase: str, last_turn: bool = True) -> tuple[str, tuple[str, ...], int]:
        """A phase's answer prefix, stop strings and token budget, from the structure (a PLAN
        turn before the last may have its own prefix, a lookup)."""
        structure = self.spec.structure
        prime = structure.log_prime if phase == "log" else structure.plan_prime
        if phase == "plan" and not last_turn and structure.plan_lookup_prime:
            prime = structure.plan_lookup_prime
        stop = (("<|DONE|>",) if phase == "log" else ()) + (("<|END|>",) if prime else ())
        return prime, stop, structure.max_tokens

    def call(self, policy: Policy, role: str, step: int, phase: str, turn: int, messages: list[dict[str, str]],
             actions: tuple[str, ...] = (), last_turn: bool = True) -> Generator[Call, Completion, str]:
        prime, stop, max_tokens = self.shape(phase, last_turn)
        sent = messages + [{"role": "assistant", "content": prime}] if prime else messages
        sampling = self.spec.sampling
        request = PolicyRequest(messages=tuple(sent), max_tokens=max_tokens, stop=stop, phase=phase,
                                valid_actions=actions, files=self.files()[1], temperature=sampling.temperature,
                                top_p=sampling.top_p,
                                seed=0 if sampling.greedy else call_seed(self.spec.seed, step, phase, turn, role))
        digest = self.digests[phase](sent)
        try:
            out = yield Call(policy, request)
        except ModelError as exc:
            self.events.append(LLMCalled(step=step, phase=phase, turn=turn, role=role, model=policy.name,
                                         prompt_digest=digest, response="", error=str(exc)))
            raise
        # The answer is prefix + continuation + the stop string it ended on (generated too): the
        # parser then sees on replay exactly what it saw live. Stored as valid UTF-8 only.
        text = storable(prime + out.text + (out.stop_hit or ""))
        self.events.append(LLMCalled(step=step, phase=phase, turn=turn, role=role, model=out.model,
                                     prompt_digest=digest, response=text, prompt_tokens=out.prompt_tokens,
                                     completion_tokens=out.completion_tokens, latency_ms=out.latency_ms))
        return text

    def apply_op(self, op: MemoryOp, step: int, phase: str, turn: int, limits: MemoryLimits,
                 index: int | None = None) -> OpResult:
        """Apply one op to memory and record it: the one way memory changes."""
        self.memory, result = apply(self.memory, op, limits)
        self.events.append(MemoryOpApplied(
            step=step, phase=phase, turn=turn, op=op, ok=result.ok, result_digest=prompts.text_digest(result.text),
            read_versions=result.read, written_versions=result.written, memory_digest=self.memory.digest(),
            index=index))
        return result

    def run_ops(self, cmds: tuple[Parsed, ...], step: int, phase: str, turn: int) -> list[str]:
        results = []
        for index, cmd in enumerate(cmds):
            if self.spec.dropped and OpRef(step, phase, turn, index) in self.spec.dropped:
                continue  # a counterfactual fork: this command never happened
            op = to_op(cmd)
            result = self.apply_op(op, step, phase, turn, self.limits, index)
            self.memory_ops += 1
            header = f"[{cmd.tag} {op.path}]" if op.path else f"[{cmd.tag}]"
            text = f"{header} {result.text}"
            if self.limits.max_file_lines and result.ok and op.kind in WRITE_KINDS:
                trim = line_cap(self.memory, op.path, self.limits)
                if trim is not None:  # the line cap: its own op, so the log alone rebuilds memory
                    text += " " + self.apply_op(trim, step, "cap", turn, self.limits).text
            results.append(text)
        return results

    def write_derived(self, step: int, phase: str, facts: EnvFacts) -> None:
        """Bring the structure's derived files up to date with the env facts (engine ops)."""
        for op in derived_ops(self.spec.structure, facts, self.memory):
            self.apply_op(op, step, phase, 0, self.engine_limits)

    # ------------------------------------------------------------------- phases

    def log_phase(self, step: int, last: str, observation: str) -> Generator[Call, Completion, None]:
        structure = self.spec.structure
        messages = prompts.log_messages(self.log_system, step, last, observation, self.memory, self.files()[0])
        for turn in range(structure.max_log_turns):
            text = yield from self.call(self.memory_policy, "memory" if self.memory_policy is not self.policy else "agent",
                                        step, "log", turn, messages)
            parsed = parse(text, self.vocab, "log")
            results = self.run_ops(parsed.commands, step, "log", turn)
            if parsed.done or not (parsed.commands or parsed.errors):
                return  # errors alone get another turn: the model sees what was malformed
            messages += [{"role": "assistant", "content": text},
                         {"role": "user", "content": prompts.turn_feedback(results, parsed.errors, False, "log")}]

    def plan_phase(self, step: int, observation: str, recent: list[str]) -> Generator[Call, Completion, str | None]:
        """Read-only lookups, then one action; None when the model never committed one.

        With two models, the memory model does the lookups until it answers with an action
        or with no command (it has what it needs), or the turns run out; then the action
        model, seeing those lookups, commits the action (its ACTION is the only one taken).
        """
        structure = self.spec.structure
        actions = self.actions
        messages = prompts.plan_messages(self.plan_system, step, observation, recent, self.memory, self.files()[0])
        two_models = self.memory_policy is not self.policy
        handover = False
        for turn in range(structure.max_plan_turns):
            last_turn = turn == structure.max_plan_turns - 1
            acting = not two_models or last_turn or handover
            policy = self.policy if acting else self.memory_policy
            text = yield from self.call(policy, "agent" if acting else "memory", step, "plan", turn, messages,
                                        tuple(actions), last_turn)
            parsed = parse(text, self.vocab, "plan")
            results = self.run_ops(parsed.commands, step, "plan", turn)
            if acting and parsed.action is not None:
                return parsed.action
            if last_turn:
                return None
            handover = handover or parsed.action is not None or not parsed.commands
            final_next = turn + 1 == structure.max_plan_turns - 1
            messages += [{"role": "assistant", "content": text},
                         {"role": "user", "content": prompts.turn_feedback(results, parsed.errors, final_next, "plan")}]
        return None

    # ------------------------------------------------------------------ the agent's part of a step

    def begin(self, facts: EnvFacts) -> None:
        """Seed memory: the structure's initial files, then its derived files (ops, so the log holds them)."""
        structure = self.spec.structure
        for name, content in sorted(structure.initial_files.items()):
            self.apply_op(MemoryOp("write", name, (content,)), 0, "init", 0, self.engine_limits)
        if structure.derived:
            self.write_derived(0, "init", facts)

    def decide(self, step: int, observation: str) -> Generator[Call, Completion, str | None]:
        """LOG what the last action did (from the second step on), then PLAN the next one."""
        if step > 0:
            yield from self.log_phase(step, self.last, observation)
        return (yield from self.plan_phase(step, observation, list(self.recent)))

    def execute(self, requested: str | None) -> StepResult:
        """The env gets the valid action the model meant (StepTaken keeps what it wrote), or
        the structure's fallback, counted invalid, when it committed none."""
        if requested is None:
            fallback = _env_step(self.spec.env, self.spec.structure.fallback_action)
            return _invalid(fallback, "no <|ACTION|> in the answer")
        return _env_step(self.spec.env, resolve_action(requested, self.action_index))

    def after(self, step: int, result: StepResult, requested: str | None) -> None:
        self.last = prompts.describe_last(result.action, result, requested or "")
        self.recent.append(f"step {step}: {result.action} -> reward {result.reward:g}")
        if self.spec.structure.derived:  # before the step's memory digest: memory after step N includes them
            self.write_derived(step, "derived", result.facts)

    # ------------------------------------------------------------------ episode

    def run(self, on_step: Callable[[int], None] | None = None) -> EpisodeEnded:
        """The whole episode, each call answered as it comes."""
        machine = self.steps(on_step)
        try:
            call = next(machine)
            while True:
                call = advance(machine, answer(*call))
        except StopIteration as done:
            return done.value

    def steps(self, on_step: Callable[[int], None] | None = None) -> Machine:
        """The episode as a step machine: yields each call, is sent its answer."""
        spec, env = self.spec, self.spec.env
        shared = self.memory_policy is self.policy
        self.policy = self.policy.for_episode(spec.seed)  # this episode's own generator, cursor or cache
        self.memory_policy = self.policy if shared else self.memory_policy.for_episode(spec.seed)
        observation, facts = env.reset(spec.seed)
        models = {"agent": self.policy.name} | ({"memory": self.memory_policy.name} if self.memory_policy is not self.policy else {})
        self.events.append(spec.started(models, self.engine_version))
        self.begin(facts)
        self.flush()
        self.log.flush()  # a started episode is durable at once: a crash shows it interrupted
        total, steps, cause = 0.0, 0, "max_steps"
        try:
            for step in range(spec.max_steps):
                requested = yield from self.decide(step, observation)
                result = self.execute(requested)
                total += result.reward
                observation = result.observation
                self.after(step, result, requested)
                self.events.append(StepTaken(
                    step=step, raw_action=requested or "", action=result.action, valid=result.valid,
                    reward=result.reward, done=result.done, observation=observation,
                    observation_digest=prompts.text_digest(observation), memory_digest=self.memory.digest(),
                    facts=result.facts))
                self.events += [OutcomeObserved(step=step, kind=k, detail=d, value=v) for k, d, v in result.outcomes]
                self.flush()
                steps = step + 1
                if on_step:
                    on_step(steps)
                if result.done:
                    cause = "done"
                    break
        except ModelError as exc:
            cause = f"model_error: {exc}"
        except EnvCrashed as exc:
            cause = f"env_error: {exc}"
        ended = EpisodeEnded(return_=total, progression=env.progression(), length=steps, cause=cause,
                             memory_ops=self.memory_ops)
        self.events.append(ended)
        self.flush()
        return ended


def _env_step(env: TextEnv, action: str) -> StepResult:
    try:
        return env.step(action)
    except Exception as exc:  # the game's own failure, not the engine's: recorded as the episode's end
        raise EnvCrashed(f"{env.name} step {action!r}: {type(exc).__name__}: {exc}") from exc


def _invalid(result: StepResult, error: str) -> StepResult:
    """The model named no valid action: a default ran, and that counts as invalid."""
    return msgspec.structs.replace(result, valid=False, error=error)
