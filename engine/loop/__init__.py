"""`automem loop`: both learning loops end to end, resumable from the log.

plan: the pure part (settings, loop id, what comes next from the recorded events);
drive: the stages, each calling the existing engine (runner, scoring, evolve, dataset,
training, evaluation), each recorded on `loop/<id>`.
"""

from automem.engine.loop.drive import (
           LoopResult,
           Services,
           loops,
           open_loop,
           run_loop,
           status,
           table,
)
from automem.engine.loop.plan import Settings, loop_id, next_step, stages

__all__ = ["LoopResult", "Services", "Settings", "loop_id", "loops", "next_step", "open_loop", "run_loop", "stages", "status",
           "table"]
