"""Questions about recorded episodes, answered from the log alone: the one reader of an
episode (its events, start, structure and limits), the summary and the list, the step
timeline, leases on episodes being played, exact replay, and time travel (memory at any op
or step from the nearest snapshot, and its diff between two steps).

May import: schemas, memory, log, envs, policy, agent, structure.
"""
