"""`automem memory`'s whole job: the memory files of an episode after a step, or what changed
between two steps, each step checked against the steps the episode took."""

from __future__ import annotations

from automem.engine.episodes.memory_diff import FileChange, memory_diff
from automem.engine.episodes.read import require_episode
from automem.engine.episodes.timeline import check_step, last_step
from automem.engine.episodes.timetravel import memory_after_step
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.log.port import EventLog
from automem.schemas.errors import UserError


def _check_steps(log: EventLog, episode: str, steps: tuple[int, ...]) -> None:
    """An existing episode that took each of `steps` (checked in the order given)."""
    require_episode(log, episode)
    final = last_step(log, episode)
    for step in steps:
        check_step(episode, final, step)


def memory_files(log: EventLog, store: SnapshotStore, episode: str, step: int,
                 file: str | None = None) -> dict[str, str]:
    """The memory files after `step` by name (only `file`, which must exist, when given)."""
    _check_steps(log, episode, (step,))
    files = memory_after_step(log, store, episode, step).contents()
    if file is None:
        return files
    if file not in files:
        raise UserError(f"no file {file!r} in {episode} after step {step}; files: {', '.join(files) or '(none)'}")
    return {file: files[file]}


def memory_changes(log: EventLog, store: SnapshotStore, episode: str, steps: tuple[int, int],
                   file: str | None = None) -> tuple[int, int, dict[str, FileChange]]:
    """(earlier step, later step, the files that changed between them), only `file` when given."""
    _check_steps(log, episode, steps)
    a, b = sorted(steps)
    changes = memory_diff(log, store, episode, a, b)
    return a, b, changes if file is None else {k: v for k, v in changes.items() if k == file}
