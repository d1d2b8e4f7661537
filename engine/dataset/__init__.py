"""The dataset engine of loop 2: scored memory decisions -> verbatim chat training examples."""

from .build import DatasetResult, build_dataset
from .select import Selection

__all__ = ["DatasetResult", "Selection", "build_dataset"]
