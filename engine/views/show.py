"""`automem show EP`: the trace of one episode for people, step by step.

Per step: the action as the model wrote it and as it ran, the reward, the model calls by
phase and turn, the memory operations with their results, and the outcomes. The LOG
phase of step N records the outcome of step N-1's action; PLAN chooses step N's action;
the seeded files are step 0's `init` ops, derived files the `derived` ops after each
step, and a line-cap trim the `cap` op right after the write it follows.

The log keeps only a digest of each op's result, so the text the model was shown is
re-derived by folding the reducer over the episode's ops under the episode's own limits,
exactly as the agent did; a result whose digest then differs from the recorded one (a
structure missing from this store) is given as None rather than as a guess.

`show_trace` derives the data (exact text, the `--json` shape); `render` prints it for a
terminal: long texts shortened with a visible marker, all log text escaped.
"""

from __future__ import annotations

import msgspec
from rich.console import Console
from rich.text import Text

from automem.engine.agent.prompts import text_digest
from automem.engine.episodes.read import read_episode
from automem.engine.episodes.timeline import steps_taken
from automem.engine.log.port import EventLog
from automem.engine.memory import EMPTY, apply
from automem.engine.scoring import episode_scores
from automem.engine.views.terminal import safe
from automem.schemas.errors import UserError
from automem.schemas.events import LLMCalled, MemoryOpApplied, OutcomeObserved, StepTaken

RESPONSE_CHARS = 300  # of a model response, in text output
ARGS_CHARS = 120  # of a memory op's arguments, in text output
RESULT_CHARS = 160  # of a result's first line, in text output


class Call(msgspec.Struct, kw_only=True):
    phase: str
    turn: int
    role: str
    model: str
    response: str
    error: str | None
    score: float | None = None  # the decision's rule score (of the result's scorer), if scored


class Op(msgspec.Struct, kw_only=True):
    phase: str
    turn: int
    op: str
    file: str
    args: tuple[str, ...]
    ok: bool
    result: str | None  # the text the model was shown; None: not re-derivable from this store
    index: int | None = None  # its place in the answer
    score: float | None = None  # the command's rule score, if scored


class Outcome(msgspec.Struct, kw_only=True):
    kind: str  # achievement | level | damage | death | ...
    detail: str
    value: float


class Step(msgspec.Struct, kw_only=True):
    step: int
    raw_action: str = ""  # as the model wrote it ("": it committed none, the fallback ran)
    action: str = ""  # as the env executed it
    valid: bool = True
    reward: float = 0.0
    done: bool = False
    calls: list[Call] = []
    ops: list[Op] = []
    outcomes: list[Outcome] = []


class ShowResult(msgspec.Struct, kw_only=True):
    episode: str
    env: str
    task: str
    steps: list[Step]
    scorer: str | None = None  # the scorer version whose scores are shown (None: not scored)


def _range(episode: str, final: int, start: int | None, end: int | None) -> tuple[int, int]:
    if final < 0:
        raise UserError(f"episode {episode} took no step: there is no trace to show")
    lo, hi = 0 if start is None else start, final if end is None else end
    if not 0 <= lo <= hi <= final:
        raise UserError(f"steps {lo}..{hi} are out of range for {episode}: it has {steps_taken(episode, final)} "
                        "(--from STEP and --to STEP within them, --from not after --to)")
    return lo, hi


def show_trace(log: EventLog, episode: str, start: int | None = None, end: int | None = None,
               scorer: str | None = None) -> ShowResult:
    """Steps `start`..`end` (default: all) of an episode, from its log alone, with the rule
    scores of `scorer` (default: the version last written for it) where it has them."""
    record = read_episode(log, episode)
    taken = record.steps
    lo, hi = _range(episode, taken[-1].step if taken else -1, start, end)
    steps = {n: Step(step=n) for n in range(lo, hi + 1)}
    version, scores = episode_scores(log, episode, scorer)

    def scored(ev: LLMCalled | MemoryOpApplied, index: int | None) -> float | None:
        found = scores.get((ev.step, ev.phase, ev.turn, index))
        return None if found is None else found.score

    limits, engine = record.limits, record.engine_limits  # the model's commands; the seeded and derived files
    memory = EMPTY
    for ev in record.events:
        n = getattr(ev, "step", None)
        if n is None:
            continue
        if n > hi:
            break
        if isinstance(ev, MemoryOpApplied):  # every op, reads too: results depend on the state
            memory, result = apply(memory, ev.op, engine if ev.phase in ("init", "derived") else limits)
            if n >= lo:
                text = result.text if text_digest(result.text) == ev.result_digest else None
                steps[n].ops.append(Op(phase=ev.phase, turn=ev.turn, op=ev.op.kind, file=ev.op.path,
                                       args=ev.op.args, ok=ev.ok, result=text, index=ev.index,
                                       score=scored(ev, ev.index) if ev.index is not None else None))
        elif n < lo:
            continue
        elif isinstance(ev, LLMCalled):
            steps[n].calls.append(Call(phase=ev.phase, turn=ev.turn, role=ev.role, model=ev.model,
                                       response=ev.response, error=ev.error, score=scored(ev, None)))
        elif isinstance(ev, StepTaken):
            s = steps[n]
            s.raw_action, s.action, s.valid, s.reward, s.done = ev.raw_action, ev.action, ev.valid, ev.reward, ev.done
        elif isinstance(ev, OutcomeObserved):
            steps[n].outcomes.append(Outcome(kind=ev.kind, detail=ev.detail, value=ev.value))
    return ShowResult(episode=episode, env=record.start.env, task=record.start.task, steps=list(steps.values()),
                      scorer=version)


# ------------------------------------------------------------------------- render


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, and a marker saying how many were left out."""
    return text if len(text) <= limit else f"{text[:limit]}… [+{len(text) - limit} chars]"


def _first_line(result: str | None) -> str:
    if result is None:
        return "(result not re-derivable from this store: the episode's structure is missing or the log differs)"
    first, _, rest = result.partition("\n")
    more = len(rest.splitlines())
    return shorten(first, RESULT_CHARS) + (f" … [+{more} lines]" if more else "")


_OUTCOME_STYLE = {"achievement": "green", "level": "magenta", "damage": "yellow", "death": "bold red"}


def _action(s: Step) -> Text:
    line = Text.assemble((f"step {s.step}", "bold cyan"), "  ", (safe(s.action), "bold"))
    if not s.raw_action:
        line.append("  (no action written: fallback)", "red")
    elif s.raw_action != s.action:
        line.append(f'  (wrote "{safe(s.raw_action)}")', "dim")
    if not s.valid:
        line.append("  INVALID", "bold red")
    line.append(f"  reward {s.reward:g}" + ("  [episode over]" if s.done else ""))
    return line


def _score(value: float | None) -> Text:
    if value is None:
        return Text("")
    return Text(f"  [score {value:+.3g}]", "green" if value > 0 else "red" if value < 0 else "dim")


def _call(c: Call) -> Text:
    line = Text.assemble(f"  {c.phase} {c.turn}  ", (f"{safe(c.role)} {safe(c.model)}", "blue"), _score(c.score), ": ")
    if c.error is not None:
        return line.append(f"model error: {safe(c.error)}", "bold red")
    return line.append(safe(shorten(c.response, RESPONSE_CHARS)).replace("\n", "\n      "))


def _op(o: Op) -> Text:
    status = ("    ok ", "green") if o.ok else ("    err", "red")
    target = "|".join((o.file, *o.args)) if o.file else "|".join(o.args)
    command = f"{o.op.upper()} {shorten(target, ARGS_CHARS)}" if target else o.op.upper()
    return Text.assemble(status, " ", safe(command).replace("\n", "\\n"), ("  -> ", "dim"), safe(_first_line(o.result)),
                         _score(o.score))


def _outcome(o: Outcome) -> Text:
    return Text.assemble("  => ", (f"{safe(o.kind)}: {safe(o.detail)}", _OUTCOME_STYLE.get(o.kind, "")))


def step_lines(s: Step) -> list[Text]:
    """One step as lines: the action, then each call with the ops it issued (a line-cap trim
    under the write it follows), the derived files, then the outcomes."""
    by_turn: dict[tuple[str, int], list[Op]] = {}
    key = ("init", 0)
    for o in s.ops:
        key = key if o.phase == "cap" else (o.phase, o.turn)
        by_turn.setdefault(key, []).append(o)
    lines = [_action(s)] + [_op(o) for o in by_turn.pop(("init", 0), [])]
    for c in s.calls:
        lines += [_call(c)] + [_op(o) for o in by_turn.get((c.phase, c.turn), [])]
    return lines + [_op(o) for o in by_turn.get(("derived", 0), [])] + [_outcome(o) for o in s.outcomes]


def render(result: ShowResult, console: Console) -> None:
    """Print the trace; the console decides on colour (a terminal, and no NO_COLOR)."""
    first, last = result.steps[0].step, result.steps[-1].step
    console.print(Text.assemble((safe(result.episode), "bold"), f"  {safe(result.env)}/{safe(result.task)}  "
                                f"steps {first}..{last}", ("  (log N: recording step N-1's outcome; plan N: "
                                                            "choosing step N's action)", "dim"),
                                (f"  scores: {safe(result.scorer)}" if result.scorer else "", "dim")),
                  soft_wrap=True, highlight=False)
    for s in result.steps:
        for line in step_lines(s):
            console.print(line, soft_wrap=True, highlight=False)
