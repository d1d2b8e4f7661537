"""The reviewer's view of the log: a digest of the episodes under review and the look-ups
it may make. Read-only: nothing here writes to the log or the store."""

from __future__ import annotations

import io
from typing import Callable

from rich.console import Console

from automem.engine.audit import audit
from automem.engine.audit.failure import scene
from automem.engine.episodes.read import read_episode
from automem.engine.episodes.timetravel import memory_after_step
from automem.engine.log.lmdb.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.log.port import EventLog
from automem.engine.scoring import episode_scores
from automem.engine.views.show import render, show_trace
from automem.schemas.events import EpisodeEnded, LLMCalled, MemoryOpApplied, StepTaken
from automem.schemas.streams import episode_stream

SEARCH_HITS = 30


def _streaks(steps: list[StepTaken]) -> tuple[int, int]:
    """(runs of 3 or more steps that left the scene unchanged, the longest run)."""
    runs, run, longest = 0, 1, 1
    for prev, s in zip(steps, steps[1:]):
        run = run + 1 if scene(s) == scene(prev) else 1
        runs += run == 3
        longest = max(longest, run)
    return runs, longest


def episode_digest(log: EventLog, store: LmdbLog | None, episode: str) -> str:
    record = read_episode(log, episode)
    events, steps = record.events, record.steps
    ops = [e for e in events if isinstance(e, MemoryOpApplied) and e.phase != "init"]
    end = events[-1] if isinstance(events[-1], EpisodeEnded) else None
    runs, longest = _streaks(steps)
    per: dict[str, list[int]] = {}
    for o in ops:
        per.setdefault(o.op.kind.upper(), [0, 0])[0 if o.ok else 1] += 1
    lines = [f"== {episode}: {len(steps)} steps, progression {end.progression if end else 0:.3f}, "
             f"ended by {end.cause if end else 'nothing (cut short)'}",
             f"reward steps {sum(s.reward > 0 for s in steps)}, invalid actions {sum(not s.valid for s in steps)}, "
             f"unchanged-scene runs of 3+ steps {runs} (longest {longest})",
             "memory commands (ok/error): " + (", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(per.items())) or "none")]
    if steps and store is not None:
        files = memory_after_step(log, SnapshotStore(store), episode, steps[-1].step).contents()
        lines.append("files at the end: " + ", ".join(f"{n} ({len(c.encode())} B, {len(c.splitlines())} lines)"
                                                      for n, c in sorted(files.items())))
    result = audit(log, episode) if steps else None
    if result is not None and result.failure is not None:
        m = result.first_mistake
        lines.append(f"failure: {result.failure.rule} at step {result.failure.step}; first memory mistake: "
                     + (f"step {m.step} {m.op.upper()} {m.file} ({m.kind}): {m.evidence}" if m else result.reason))
    version, scores = episode_scores(log, episode)
    answers = [d.score for d in scores.values() if d.index is None]
    if answers:
        lines.append(f"decision scores ({version}): {len(answers)} answers, mean {sum(answers) / len(answers):+.3f}, "
                     f"{sum(a > 0 for a in answers)} above their baseline")
    return "\n".join(lines)


def tools(log: EventLog, store: LmdbLog | None, episodes: list[str]) -> dict[str, Callable[..., str]]:
    """The look-ups, over the episodes under review only."""

    def known(episode: str) -> str:
        if episode not in episodes:
            raise ValueError(f"not an episode under review; these are: {', '.join(episodes)}")
        return episode

    def steps(episode: str, span: str) -> str:
        lo, _, hi = span.partition("-")
        trace = show_trace(log, known(episode), int(lo), int(hi or lo))
        console = Console(record=True, width=160, color_system=None, file=io.StringIO())
        render(trace, console)
        return console.export_text()

    def memory(episode: str, step: str) -> str:
        if store is None:
            raise ValueError("memory is not available here")
        files = memory_after_step(log, SnapshotStore(store), known(episode), int(step)).contents()
        return "\n".join(f"--- {n}\n{c}" for n, c in sorted(files.items())) or "(no files)"

    def audited(episode: str) -> str:
        r = audit(log, known(episode))
        m = r.first_mistake
        return (f"failure: {r.failure.rule} at step {r.failure.step}: {r.failure.detail}\n" if r.failure else "no failure\n") + (
            f"first mistake: step {m.step} {m.phase} {m.op.upper()} {m.file}|{m.content[:200]} ({m.kind}): {m.evidence}"
            if m else f"first mistake: none ({r.reason})")

    def search(keyword: str) -> str:
        hits = []
        for episode in episodes:
            for rec in log.read_stream(episode_stream(episode)):
                e = rec.event
                text = e.response if isinstance(e, LLMCalled) else "|".join(e.op.args) if isinstance(e, MemoryOpApplied) else ""
                if keyword.lower() in text.lower():
                    hits.append(f"{episode} step {e.step} {e.phase}: {text[:200]}")  # type: ignore[union-attr]
                    if len(hits) >= SEARCH_HITS:
                        return "\n".join(hits) + f"\n[first {SEARCH_HITS} hits]"
        return "\n".join(hits) or f"no answer or memory line holds {keyword!r}"

    return {"EPISODES": lambda: "\n".join(episode_digest(log, store, e).splitlines()[0] for e in episodes),
            "STEPS": steps, "MEMORY": memory, "AUDIT": audited, "SEARCH": search}
