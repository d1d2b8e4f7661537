"""`automem report EP`: one self-contained HTML page of an episode.

A pure function from the episode's events (and optionally its audit) to an HTML string:
the events are folded once into a JSON document — steps with their actions, rewards,
model calls, memory ops, outcomes and progression; the memory files as a compact history
of edits (one entry per file per step that changed it: keep a prefix and a suffix of the
previous content, put new text between) — embedded in the page beside inline CSS and a
small vanilla script (`report_page.py`). Nothing is fetched at view time, and the page's
Content-Security-Policy allows no network at all: no source but its own inline script.

Every text from the log (model responses, observations, memory contents) is untrusted: it
sits in a `<script type="application/json">` block with `<`, `>` and `&` escaped, and the
script only ever puts it into the page as text nodes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from automem.engine.audit import AuditResult
from automem.engine.audit import audit as audit_episode
from automem.engine.episodes.read import read_episode
from automem.engine.log.port import EventLog
from automem.engine.memory.reducer import apply
from automem.engine.memory.snapshot import REPLAY_LIMITS, is_write
from automem.engine.memory.state import EMPTY
from automem.engine.probes.shown import probes_by_step
from automem.engine.scoring import episode_scores
from automem.engine.views.report_page import CSS, JS, TEMPLATE
from automem.schemas.errors import UserError
from automem.schemas.events import (
    DecisionScored,
    EpisodeAbandoned,
    EpisodeEnded,
    EpisodeStarted,
    LLMCalled,
    MemoryOpApplied,
    OutcomeObserved,
    StepTaken,
)

MAX_ARG_CHARS = 2000  # a memory op's argument as shown in the ops table (the response has it whole)


# ---------------------------------------------------------------------- progression


def progression_series(env: str, steps: list[dict[str, Any]]) -> tuple[str, list[float] | None]:
    """Progression after each step from the recorded facts, as each env defines it, with a
    label saying what is plotted (None: the env has no progression to derive)."""
    if env == "crafter":
        from automem.engine.envs.crafter_env import N_ACHIEVEMENTS

        return (f"achievements unlocked / {N_ACHIEVEMENTS}",
                [len(s["facts"].get("achievements", ())) / N_ACHIEVEMENTS for s in steps])
    if env == "nethack":
        from automem.engine.envs.nethack_env import balrog_progress

        best, out = 0.0, []
        for s in steps:
            f = s["facts"]
            if f.get("depth") is not None or f.get("level") is not None:
                best = max(best, balrog_progress(int(f.get("depth") or 0), int(f.get("level") or 0)))
            out.append(best)
        return "BALROG's depth/level table value, best so far", out
    if env == "minihack":
        solved, out = 0.0, []
        for s in steps:
            if any(o["kind"] == "achievement" and o["detail"] == "task solved" for o in s["outcomes"]):
                solved = 1.0
            out.append(solved)
        return "task solved (0 or 1)", out
    return "", None


# ------------------------------------------------------------------- memory history


def _common_prefix(a: str, b: str) -> int:
    if b.startswith(a):
        return len(a)
    lo, hi = 0, min(len(a), len(b))  # binary search on slice equality: C speed on long files
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _u16(text: str) -> int:
    """Length in UTF-16 code units, as JavaScript strings count (non-BMP characters are 2)."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def edit(old: str | None, new: str | None) -> list[Any] | None:
    """One history entry: None (file deleted) or [keep_head, keep_tail, middle] so that
    new = old[:keep_head] + middle + old[len(old) - keep_tail:], counted in UTF-16 units."""
    if new is None:
        return None
    if not old:
        return [0, 0, new]
    p = _common_prefix(old, new)
    s = _common_suffix(old, new, min(len(old), len(new)) - p)
    return [_u16(old[:p]), _u16(old[len(old) - s:]) if s else 0, new[p:len(new) - s]]


# ------------------------------------------------------------------------- gather


def _facts(ev: StepTaken) -> dict[str, Any]:
    facts = msgspec.to_builtins(ev.facts)
    facts.pop("nearby", None)  # the observation says it, in words
    return facts


def _clip(text: str, limit: int = MAX_ARG_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


class _Page:
    """The page's data folded event by event: episode meta, steps, and per file its edits."""

    def __init__(self, scores: dict[tuple, DecisionScored]) -> None:
        self.scores = scores
        self.meta: dict[str, Any] = {"status": "running"}
        self.steps: dict[int, dict[str, Any]] = {}
        self.history: dict[str, list[list[Any]]] = {}
        self.state, self.done_state, self.open_step = EMPTY, EMPTY, None

    def scored(self, ev: Any, index: int | None) -> float | None:
        found = self.scores.get((ev.step, ev.phase, ev.turn, index))
        return None if found is None else found.score

    def step(self, n: int) -> dict[str, Any]:
        if n not in self.steps:
            self.steps[n] = {"step": n, "taken": False, "action": "", "raw": "", "valid": True, "reward": 0.0,
                             "done": False, "obs": "", "facts": {}, "calls": [], "ops": [], "outcomes": [],
                             "changed": []}
        return self.steps[n]

    def close(self) -> None:
        """The files the open step changed, each with its edit."""
        if self.open_step is None:
            return
        old, new = self.done_state.contents(), self.state.contents()
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                self.history.setdefault(name, []).append([self.open_step, edit(old.get(name), new.get(name))])
                self.step(self.open_step)["changed"].append(name)

    def add(self, ev: Any) -> None:
        n = getattr(ev, "step", None)
        if n is not None and n != self.open_step:
            self.close()
            self.done_state, self.open_step = self.state, n
        if isinstance(ev, EpisodeStarted):
            self.meta.update(id=ev.episode, env=ev.env, task=ev.task, seed=ev.seed, max_steps=ev.max_steps,
                             structure=ev.structure, models=ev.models, engine_version=ev.engine_version,
                             parent=ev.parent, fork_step=ev.fork_step, agent=ev.agent.label(),
                             has_memory=ev.agent.has_memory)
        elif isinstance(ev, LLMCalled):
            self.step(ev.step)["calls"].append({
                "phase": ev.phase, "turn": ev.turn, "role": ev.role, "model": ev.model, "response": ev.response,
                "error": ev.error, "tokens": [ev.prompt_tokens, ev.completion_tokens], "ms": round(ev.latency_ms, 1),
                "score": self.scored(ev, None)})
        elif isinstance(ev, MemoryOpApplied):
            write = is_write(ev)
            self.step(ev.step)["ops"].append({
                "phase": ev.phase, "turn": ev.turn, "kind": ev.op.kind, "file": ev.op.path,
                "args": [_clip(a) for a in ev.op.args], "ok": ev.ok, "write": write,
                "score": self.scored(ev, ev.index) if ev.index is not None else None})
            if write:
                self.state, _ = apply(self.state, ev.op, REPLAY_LIMITS)
        elif isinstance(ev, StepTaken):
            self.step(ev.step).update(taken=True, action=ev.action, raw=ev.raw_action, valid=ev.valid,
                                      reward=ev.reward, done=ev.done, obs=ev.observation, facts=_facts(ev))
        elif isinstance(ev, OutcomeObserved):
            self.step(ev.step)["outcomes"].append({"kind": ev.kind, "detail": ev.detail, "value": ev.value})
        elif isinstance(ev, EpisodeEnded):
            self.meta.update(status="ended", cause=ev.cause, length=ev.length, progression=ev.progression,
                             memory_ops=ev.memory_ops if self.meta.get("has_memory", True) else None,
                             **{"return": ev.return_})
        elif isinstance(ev, EpisodeAbandoned):
            self.meta.update(status="abandoned", cause=ev.reason)

    def ordered(self) -> list[dict[str, Any]]:
        """Every step in order (gaps filled), with its return so far, its decisions' summed score
        and, where the env has one, its progression."""
        out = [self.steps.get(n) or self.step(n) for n in range(max(self.steps) + 1)] if self.steps else []
        total = 0.0
        for s in out:
            total += s["reward"]
            s["ret"] = round(total, 6)
            decided = [c["score"] for c in s["calls"] if c["score"] is not None]
            s["score"] = round(sum(decided), 6) if decided else None
        return out


def gather(events: Iterable[Any], audit: AuditResult | None = None, audit_note: str = "",
           scores: dict[tuple, DecisionScored] | None = None, scorer: str | None = None) -> dict[str, Any]:
    """The page's data from an episode stream's events, in order; `scores` are the decisions'
    rule scores by (step, phase, turn, index), `scorer` their version."""
    page = _Page(scores or {})
    for ev in events:
        page.add(ev)
    page.close()
    ordered = page.ordered()
    label, series = progression_series(page.meta.get("env", ""), ordered)
    if series is not None:
        for s, p in zip(ordered, series):
            s["prog"] = p
    return {
        "episode": page.meta,
        "progression": label,
        "steps": ordered,
        "files": page.history,
        "audit": None if audit is None else msgspec.to_builtins(audit),
        "audit_note": audit_note,
        "scorer": scorer,
    }


# ------------------------------------------------------------------------- render


def _script_json(doc: Any) -> str:
    """JSON safe inside a <script> element: nothing in it can close the element or open a comment."""
    text = msgspec.json.encode(doc).decode()
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def render(data: dict[str, Any]) -> str:
    """The page for gathered data."""
    digest = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
    title = f"automem report — {data['episode'].get('id', '?')}"
    parts = {"TITLE": html.escape(title), "SCRIPT_HASH": digest, "CSS": CSS, "DATA": _script_json(data), "JS": JS}
    return re.sub(r"__(TITLE|SCRIPT_HASH|CSS|DATA|JS)__", lambda m: parts[m.group(1)], TEMPLATE)  # one pass: data never re-scanned


def episode_report(log: EventLog, episode: str, audit: AuditResult | None = None, audit_note: str = "",
                   scorer: str | None = None) -> str:
    """The page of a stored episode, with the rule scores of `scorer` (default: the latest) if it has any."""
    record = read_episode(log, episode)
    version, scores = episode_scores(log, episode, scorer)
    data = gather(record.events, audit, audit_note, scores, version)
    probes = probes_by_step(log, episode)
    for s in data["steps"]:
        s["probes"] = msgspec.to_builtins(probes.get(s["step"], []))
    return render(data)


def audited_report(log: EventLog, episode: str, failure: int | None = None, scorer: str | None = None,
                   run_audit: bool = True) -> str:
    """The episode's page with its audit, as `automem report` and `automem loop report` write it:
    an audit that cannot run is a note on the page, unless the caller named the failure step
    (then its refusal is the caller's error and is raised)."""
    result, note = None, "" if run_audit else "audit not run (--no-audit)"
    if run_audit:
        try:
            result = audit_episode(log, episode, failure)
        except UserError as exc:
            if failure is not None:
                raise
            note = f"audit not run: {exc}"
    return episode_report(log, episode, result, note, scorer)
