"""Probe accuracy as a proficiency figure: what `automem eval --probes` adds per episode."""

from __future__ import annotations

from typing import Callable

from automem.engine.log.port import EventLog
from automem.engine.models.load import load_policy
from automem.engine.probes.run import probe_episode

EVERY = 10  # asked after every 10th step, all the game's kinds, the default seed


def probe_figure(log: EventLog, reader: str) -> Callable[[str], float | None]:
    """Episode -> the share of its probes the reader answered right with the memory as it was
    (the control's share for an agent without memory); None when there was nothing to ask."""
    policy = load_policy(reader, log)

    def figure(episode: str) -> float | None:
        overall = probe_episode(log, episode, policy, every=EVERY).overall
        return overall.memory.accuracy if overall.memory.n else overall.control.accuracy

    return figure
