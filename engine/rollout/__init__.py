"""Playing episodes: the request a run takes and its bounds, the driver that keeps episodes
in flight and batches their model calls, the local runner (worker processes, group commit)
and the bus side (rollout requests, workers, their status).

May import: schemas, memory, log, envs, policy, agent, structure, episodes, models.
"""
