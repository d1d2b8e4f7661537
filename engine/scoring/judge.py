"""A model's second opinion on a sample of memory decisions, kept apart from the rule score.

The judge sees one decision (the answer as recorded), what its commands returned, and
what followed over the next steps, and grades it 0-10 against a short rubric. Grades are
DecisionScored events with `rule="judge:MODEL"` and their own version, on the same score
stream: never mixed into the rule score, and re-judging with the same judge writes
nothing new. The sample is a pure function of the episode and the decisions' places.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from automem.engine.episodes.read import read_episode
from automem.engine.episodes.trace import ShowResult, trace
from automem.engine.log import ConflictError
from automem.engine.log.port import EventLog
from automem.engine.policy.base import ModelError, Policy, PolicyRequest
from automem.schemas.events import DecisionScored
from automem.schemas.streams import score_stream

RUBRIC = (
    "You grade one memory decision of a game-playing agent. The agent keeps notes in text files "
    "and reads them back. A good decision records facts that are true and useful later, reads what "
    "it needs before acting, and leads to progress; a bad one records false or useless text, misses "
    "what it should have read, or errs. Answer with one line: GRADE: N, with N from 0 (harmful) to 10 (excellent)."
)
_GRADE = re.compile(r"GRADE:\s*(10|[0-9])\b", re.I)
AFTER = 5  # steps of what followed, shown to the judge
CHARS = 400  # of each text shown


def judge_version(policy: Policy) -> str:
    return "judge-1-" + hashlib.sha256(f"{RUBRIC}\n{policy.name}".encode()).hexdigest()[:12]


def sample(keys: list[tuple], episode: str, n: int) -> list[tuple]:
    """Up to `n` of `keys`, chosen by a hash of their place: the same every time."""
    rank = lambda k: hashlib.blake2b(f"{episode}/{k}".encode(), digest_size=8).digest()  # noqa: E731
    return sorted(sorted(keys, key=rank)[:n])


def _clip(text: str) -> str:
    return text if len(text) <= CHARS else text[:CHARS] + " [...]"


def prompt(shown: ShowResult, key: tuple) -> str:
    """The decision, its commands' results and the steps after it, from `automem show`'s trace."""
    step, phase, turn = key[:3]
    lines = []
    for s in shown.steps:
        if s.step == step:
            call = next(c for c in s.calls if (c.phase, c.turn) == (phase, turn))
            lines.append(f"The decision ({phase.upper()} phase of step {step}):\n{_clip(call.response)}")
            lines += [f"- {o.op.upper()} {o.file} -> {_clip((o.result or '?').splitlines()[0] if o.result else '?')}"
                      for o in s.ops if (o.phase, o.turn) == (phase, turn)]
            lines.append("What followed:")
        if step <= s.step <= step + AFTER:
            outcomes = "; ".join(f"{o.kind} {o.detail}" for o in s.outcomes)
            lines.append(f"step {s.step}: {s.action} reward {s.reward:g}" + (f" ({outcomes})" if outcomes else ""))
    return "\n".join(lines)


def grade(text: str) -> int | None:
    found = _GRADE.search(text)
    return int(found.group(1)) if found else None


class Judged(msgspec.Struct, kw_only=True):
    judged: int = 0
    ungraded: int = 0  # answers with no GRADE line
    unavailable: str | None = None  # why the judge stopped (its endpoint down); rule scores are unaffected


def judge_episode(log: EventLog, episode: str, policy: Policy, rule_scores: dict[tuple, DecisionScored],
                  n: int) -> Judged:
    version, out = judge_version(policy), Judged()
    stream = score_stream(episode)
    done = {(e.step, e.phase, e.turn) for e in (r.event for r in log.read_stream(stream))
            if isinstance(e, DecisionScored) and e.scorer == version}
    answers = [k for k in rule_scores if k[3] is None and k[:3] not in done]
    chosen = sample(answers, episode, max(0, n - len(done)))
    if not chosen:
        return out
    shown = trace(read_episode(log, episode))
    grades: list[DecisionScored] = []
    for key in chosen:
        request = PolicyRequest(messages=({"role": "system", "content": RUBRIC},
                                          {"role": "user", "content": prompt(shown, key)}), max_tokens=12, phase="judge")
        try:
            g = grade(policy.complete(request).text)
        except ModelError as exc:
            out.unavailable = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            break
        if g is None:
            out.ungraded += 1
            continue
        grades.append(DecisionScored(episode=episode, step=key[0], phase=key[1], turn=key[2], score=(g - 5) / 5,
                                     components={"grade": float(g)}, rule=f"judge:{policy.name}", index=None,
                                     kind="answer", scorer=version))
    while grades:
        head = log.head(stream)
        done = {(e.step, e.phase, e.turn) for e in (r.event for r in log.read_stream(stream))
                if isinstance(e, DecisionScored) and e.scorer == version}
        grades = [g for g in grades if (g.step, g.phase, g.turn) not in done]
        try:
            if grades:
                log.append(stream, head, grades)
            break
        except ConflictError:
            continue  # another writer appended meanwhile: look again
    out.judged = len(grades)
    return out
