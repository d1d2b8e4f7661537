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

`show_trace` is the trace (engine/episodes/trace.py) with the rule scores attached, the
`--json` shape; `render` prints it for a terminal: long texts shortened with a visible
marker, all log text escaped.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from automem.engine.episodes.read import read_episode
from automem.engine.episodes.trace import Call, Op, Outcome, ProbeShown, ShowResult, Step, trace
from automem.engine.log.port import EventLog
from automem.engine.probes.shown import probes_by_step
from automem.engine.scoring import episode_scores
from automem.engine.views.terminal import safe

RESPONSE_CHARS = 300  # of a model response, in text output
ARGS_CHARS = 120  # of a memory op's arguments, in text output
RESULT_CHARS = 160  # of a result's first line, in text output


def show_trace(log: EventLog, episode: str, start: int | None = None, end: int | None = None,
               scorer: str | None = None) -> ShowResult:
    """Steps `start`..`end` (default: all) of an episode, from its log alone, with the rule
    scores of `scorer` (default: the version last written for it) where it has them."""
    record = read_episode(log, episode)
    version, scores = episode_scores(log, episode, scorer)
    result = trace(record, start, end, scores, version)
    probes = probes_by_step(log, episode)
    for s in result.steps:
        s.probes = probes.get(s.step, [])
    return result


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


def _probe(p: ProbeShown) -> list[Text]:
    verdict = ("failed: " + safe(p.error), "bold red") if p.error else ("right", "green") if p.correct else ("wrong", "red")
    head = Text.assemble("  probe ", (f"[{safe(p.arm)}, {safe(p.reader)}]", "magenta"), f" {safe(p.kind)}: {safe(p.question)}")
    return [head] + [Text(f"    {safe(shorten(q, ARGS_CHARS))}", "dim") for q in p.lookups] + [Text.assemble(
        f"    answer {safe(shorten(p.answer, RESULT_CHARS))!r}  key {safe(p.key)!r} (step {p.about})  ", verdict)]


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
    return (lines + [_op(o) for o in by_turn.get(("derived", 0), [])] + [_outcome(o) for o in s.outcomes]
            + [line for p in s.probes for line in _probe(p)])


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
