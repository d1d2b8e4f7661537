"""The reviewer's conversation: what it is shown, what it may ask, what it must answer.

The reviewer reads a digest of the episodes played under the current structure and the
structure itself. Before it proposes, it may look further through read-only commands in
the agent's own tag syntax, answered turn by turn up to a budget, so any chat model can
review (no tool-calling support needed) and a `file:` reviewer can script it in tests:

  <|EPISODES|><|END|>            the episodes under review, one line each
  <|STEPS|>EP|A-B<|END|>         steps A..B of an episode, as `automem show` prints them
  <|MEMORY|>EP|STEP<|END|>       the memory files after a step
  <|AUDIT|>EP<|END|>             the audit: failure and first memory mistake
  <|SEARCH|>keyword<|END|>       model answers and memory lines holding the keyword

It ends with an analysis and `<|PROPOSAL|>` followed by the revised structure as JSON.
Everything shown is cut to a character budget, so it fits the reviewer's context.
"""

from __future__ import annotations

import json
import re
from typing import Callable

import msgspec

from automem.schemas.errors import UserError
from automem.schemas.structure import Structure, encode_structure

TOOL = re.compile(r"<\|(EPISODES|STEPS|MEMORY|AUDIT|SEARCH)\|>(.*?)<\|END\|>", re.S)
PROPOSAL = "<|PROPOSAL|>"
RESULT_CHARS = 3_000  # of one look-up's answer
MAX_LOOKUPS = 6  # answered per reviewer answer
DIGEST_CHARS = 6_000  # of the episodes' digest in the first message

SYSTEM = """You review the memory structure of an LLM agent that plays {game}. The agent keeps memory in text \
files and manages it with commands; the structure (JSON below) holds its prompts, seeded files, command \
vocabulary, turn budgets and limits. Study how the episodes went and propose a revised structure that makes \
the agent progress further. Keep LLM-driven memory commands in both phases (LOG writes, PLAN lookups) and make \
at least one structural change (commands, files, budgets, limits): rewording alone does not count.
Before proposing you may look things up, one or more per answer (read-only):
<|EPISODES|><|END|>  <|STEPS|>EPISODE|A-B<|END|>  <|MEMORY|>EPISODE|STEP<|END|>  <|AUDIT|>EPISODE<|END|>  <|SEARCH|>keyword<|END|>
When ready, answer with your analysis, then <|PROPOSAL|> followed by the complete revised structure as one JSON object."""


class Lookup(msgspec.Struct, frozen=True):
    tool: str
    args: tuple[str, ...]


def first_message(structure: Structure, digest: str) -> str:
    doc = json.dumps(json.loads(encode_structure(structure)), indent=1)
    return f"Episodes under the current structure:\n{cut(digest, DIGEST_CHARS)}\n\nThe current structure:\n{doc}"


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters not shown]"


def lookups(answer: str) -> list[Lookup]:
    """The read-only commands of an answer, in order (none once it proposes)."""
    head = answer.split(PROPOSAL, 1)[0]
    return [Lookup(m.group(1), tuple(part.strip() for part in m.group(2).split("|")) if m.group(2).strip() else ())
            for m in TOOL.finditer(head)]


def proposal(answer: str) -> tuple[str, bytes] | None:
    """(analysis, JSON document) when the answer proposes: the first JSON value after the tag,
    decoded whole (prompts hold tags like <|END|>, so no terminator can end it)."""
    if PROPOSAL not in answer:
        return None
    analysis, rest = answer.split(PROPOSAL, 1)
    start = rest.find("{")
    if start < 0:
        return analysis.strip(), rest.strip().encode()
    try:
        value, _ = json.JSONDecoder().raw_decode(rest, start)
    except (json.JSONDecodeError, RecursionError):  # not JSON, or nested past any structure: refused later
        return analysis.strip(), rest[start:].encode()
    return analysis.strip(), json.dumps(value).encode()


def answer_lookups(found: list[Lookup], tools: dict[str, Callable[..., str]]) -> str:
    """Each look-up's answer, cut to the budget (at most MAX_LOOKUPS a turn); a bad one says
    what is wrong, so the reviewer can ask again."""
    out = []
    for look in found[:MAX_LOOKUPS]:
        try:
            text = tools[look.tool](*look.args)
        except (TypeError, ValueError, KeyError, UserError) as exc:
            text = f"ERROR: {look.tool} {'|'.join(look.args)}: {exc}"
        out.append(f"[{look.tool} {'|'.join(look.args)}]\n{cut(text, RESULT_CHARS)}")
    if len(found) > MAX_LOOKUPS:
        out.append(f"[only the first {MAX_LOOKUPS} look-ups of an answer are answered]")
    return "\n\n".join(out)
