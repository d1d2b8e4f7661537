"""The audit: when did the first memory mistake happen, and what is the evidence?

1. find the failure (failure.py), or take the step the user names;
2. walk provenance back from the decisions that led to it (provenance.py);
3. check the writes on that graph against the recorded env facts (findings.py);
4. report the earliest wrong write with its chain: write -> reads -> decisions -> failure.
Reads only the log; `counterfactual.fork` is the one part that writes (a new episode).

May import: schemas, memory, log, envs, policy, agent, episodes, models, rollout (a
counterfactual fork is an episode played from a recorded prefix).
"""

from __future__ import annotations

from automem.engine.audit.run import (
    AuditResult,
    Counterfactual,
    Failure,
    Link,
    Mistake,
    audit,
)

__all__ = ['AuditResult', 'Counterfactual', 'Failure', 'Link', 'Mistake', 'audit']
