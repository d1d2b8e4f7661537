"""Memory proficiency figures of one episode, from its log alone. Pure.

What a memory specialist should get better at, besides the game: issuing valid memory
commands, not erring, not writing duplicates, writing what is later read, keeping the
action valid, and writing claims that are true.
"""

from __future__ import annotations

from typing import Sequence

from automem.engine.audit import findings, provenance
from automem.engine.memory.snapshot import is_write
from automem.engine.scoring.credit import memory_calls
from automem.schemas.events import StepTaken
from automem.schemas.structure import MemoryLimits

# figure -> True when higher is better
FIGURES = {
    "commands_per_turn": True,  # valid memory commands per memory-role answer
    "command_error_rate": False,  # commands that returned an error / commands
    "duplicate_write_rate": False,  # writes of a line the file had already / writes
    "writes_read_share": True,  # writes some later read showed a line of / writes
    "invalid_action_rate": False,  # steps whose action was invalid or missing / steps
    "true_claim_share": True,  # checkable claims that held at their moment / checkable claims
    # memory probes answered right with the memory as it was (engine/probes); only where probes
    # were asked (`automem eval --probes`): the one figure that needs a reader, so it is not computed here
    "probe_accuracy": True,
}


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def figures(events: Sequence[object], limits: MemoryLimits) -> dict[str, float]:
    trace = provenance.build(events, limits)
    calls = {(c.step, c.phase, c.turn) for c in memory_calls(events)}
    ops = [o for o in trace.ops if (o.event.step, o.event.phase, o.event.turn) in calls]
    writes = [o for o in ops if o.event.ok and is_write(o.event)]
    claims = [held for w in writes for held in findings.checked_claims(trace, w)]
    steps = [e for e in events if isinstance(e, StepTaken)]
    return {
        "commands_per_turn": _share(sum(o.event.ok for o in ops), len(calls)),
        "command_error_rate": _share(sum(not o.event.ok for o in ops), len(ops)),
        "duplicate_write_rate": _share(sum(w.repeated for w in writes), len(writes)),
        "writes_read_share": _share(sum(w.index in trace.readers for w in writes), len(writes)),
        "invalid_action_rate": _share(sum(not s.valid for s in steps), len(steps)),
        "true_claim_share": _share(sum(claims), len(claims)),
    }


def mean_figures(per_episode: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's mean over the episodes that have it (probe accuracy only where probes were asked)."""
    out = {}
    for k in FIGURES:
        values = [f[k] for f in per_episode if k in f]
        if values:
            out[k] = round(sum(values) / len(values), 6)
    return out
