"""`automem loop` as a subprocess, with a scripted reviewer and a few training steps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

from automem.engine.structure.seeds import v0
from automem.schemas.structure import encode_structure

LOOP = [sys.executable, "-c", "from automem.engine.cli import main; main()", "loop"]


FAST = {"max_steps": 2, "batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0}


def _reviewer(path: Path) -> str:
    """A reviewer that proposes one structural change of v0-small (the fallback action)."""
    doc = encode_structure(msgspec.structs.replace(v0("crafter", small=True), fallback_action="Do")).decode()
    path.write_text(json.dumps({"text": f"Act when unsure.\n<|PROPOSAL|>{doc}"}) + "\n")
    return f"file:{path}"


def _args(data: Path, reviewer: str, *extra: str) -> list[str]:
    return ["run", "--data", str(data), "--policy", "random", "--structure", "v0-small", "--loops", "1",
            "--reviewer", reviewer, "--episodes", "3", "--max-steps", "20", "--json", *extra]
