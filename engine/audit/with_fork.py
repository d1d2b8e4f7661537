"""`automem audit`'s whole job: audit an episode and, when asked, fork it before its first
wrong write and play the fork live. The audit only reads; the store is opened for writing
(the fork is a new episode) only once the audit is done."""

from __future__ import annotations

from automem.engine.audit.counterfactual import fork
from automem.engine.audit.result import AuditResult
from automem.engine.audit.run import audit
from automem.engine.log import local_folder, open_log
from automem.engine.models.load import load_policy
from automem.engine.policy.sampling import Sampling


def audit_with_fork(bus: str | None, data: str | None, episode: str, failure: int | None, fork_policy: str | None,
                    horizon: int | None, sampling: Sampling | None) -> AuditResult:
    """The audit of `episode`; with `fork_policy` (a policy spec) its counterfactual fork too."""
    with open_log(bus, data, create=False) as log:
        result = audit(log, episode, failure)
    if fork_policy is not None:
        with open_log(bus, data) as log:
            live = load_policy(fork_policy, log, local_folder(bus, data))
            result.counterfactual = fork(log, result, live, horizon, sampling=sampling)
    return result
