"""An evaluation and the promotion it earns, as the log records them: the evaluation on the
version's own stream, the promotion on its role's history (`model/role-<role>`), appended
only where that history stood when the evaluation began, so a promotion in between is seen
rather than overwritten."""

from __future__ import annotations

from automem.engine.log.port import ConflictError, EventLog, append_read_back
from automem.engine.models.registry import promotions
from automem.schemas.errors import UserError
from automem.schemas.events import ModelVersionEvaluated, ModelVersionPromoted
from automem.schemas.streams import model_stream, role_stream


def record_evaluation(log: EventLog, evaluated: ModelVersionEvaluated, promotion: ModelVersionPromoted | None,
                      history_head: int) -> None:
    """Append the evaluation, then the promotion (None: not asked, or not won) at `history_head`,
    the head of the role's history read before the episodes were played."""
    stream = model_stream(evaluated.name)
    log.append(stream, log.head(stream), [evaluated])
    if promotion is None:
        return
    try:
        append_read_back(log, role_stream(promotion.role), history_head, [promotion])
    except ConflictError:
        raise UserError("another version was promoted while this one was evaluated: evaluate it again "
                        f"(now against {promotions(log, promotion.role)[-1].name})") from None
