"""Published evaluation protocols (BALROG's), run on automem's agents: the protocol's episodes
(played, or reused from the store), its figures computed as the protocol computes them, the
settings that differ from it, and the published rows to set beside them.

May import: schemas, log, envs, policy, episodes, rollout; the published rows are data.
"""
