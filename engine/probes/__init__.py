"""Memory probes: questions about an episode's past whose answers are in its recorded env
facts and not in the observation at the step asked, answered by a reader with memory as it
was then and, as the control, without it; probe credit scores the writes their lookups
showed. Generators, checker and statistics are pure; the run reads the log and writes the
probe stream.

May import: schemas, engine.memory, engine.log (the port), engine.envs (seeds and phrases),
engine.policy, engine.agent (the parser, prompts, call), engine.structure, engine.episodes,
engine.rollout (the driver), engine.audit (the provenance graph probe credit walks),
engine.evaluation (its paired statistics).
"""

from automem.engine.probes.run import ProbeRun, probe_episode

__all__ = ["ProbeRun", "probe_episode"]
