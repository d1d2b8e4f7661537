"""The dataset engine of loop 2: scored memory decisions -> verbatim chat training examples.

May import: schemas, log, policy, agent, episodes (examples are rebuilt by replay from
scored decisions).
"""

from automem.engine.dataset.build import DatasetResult, build_dataset, selectable
from automem.engine.dataset.select import Selection

__all__ = ["DatasetResult", "Selection", "build_dataset", "selectable"]
