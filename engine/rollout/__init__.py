"""Playing episodes: the request a run takes and its one check (request), the ids a rollout
mints (ids), its bounds (limits), the driver that keeps episodes in flight and batches
their model calls (drive), the local runner (worker processes, group commit: run), the
players a side's episodes come from (players: Local, Remote) and the bus side (rollout
requests, workers, their status: bus).

May import: schemas, memory, log, envs, policy, agent, structure, episodes, models.
"""
