"""`automem loop`: both learning loops end to end, resumable from the log.

plan: the pure part (settings, loop id, what comes next from the recorded events);
records: each stage's typed result and its one translation to and from LoopStageDone;
stages: the stages by name, each calling the existing engine; drive: runs them, each
recorded on `loop/<id>`; table: the loop's rows; settings: `loop run`'s options checked.

May import: every engine package below it (schemas up to evolve); never the CLI or consumers.
"""

from automem.engine.loop.drive import LoopResult, open_loop, run_loop
from automem.engine.loop.plan import Settings, loop_id, next_step, stages
from automem.engine.loop.settings import Options, Start, settings_from_options
from automem.engine.loop.stages import STAGES, Services
from automem.engine.loop.table import LoopStatus, Row, loops, status, table

__all__ = ["STAGES", "LoopResult", "LoopStatus", "Options", "Row", "Services", "Settings", "Start", "loop_id", "loops",
           "next_step", "open_loop", "run_loop", "settings_from_options", "stages", "status", "table"]
