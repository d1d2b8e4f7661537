"""The vllm backend's settings, checked before any engine starts (vLLM need not be installed):
the LoRA rank vLLM is asked to hold, and AUTOMEM_VLLM_ENGINE_ARGS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automem.engine.policy.base import BadPolicySpec
from automem.engine.policy.vllm_backend import lora_rank, overrides


def _adapter(tmp_path: Path, config: object) -> Path:
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    return tmp_path


@pytest.mark.parametrize(("rank", "slots"), [(1, 1), (4, 8), (8, 8), (9, 16), (64, 64), (300, 320), (512, 512)])
def test_the_lora_rank_is_the_smallest_vllm_accepts_that_holds_the_adapters(tmp_path: Path, rank: int,
                                                                            slots: int) -> None:
    assert lora_rank(_adapter(tmp_path, {"r": rank})) == slots


@pytest.mark.parametrize(("config", "message"), [({"r": 1024}, "ranks up to 512"), ({}, "has no LoRA rank"),
                                                 ({"r": "eight"}, "has no LoRA rank")])
def test_an_adapter_vllm_cannot_hold_is_one_line(tmp_path: Path, config: object, message: str) -> None:
    with pytest.raises(BadPolicySpec, match=message) as raised:
        lora_rank(_adapter(tmp_path, config))
    assert "\n" not in str(raised.value)


def test_engine_args_from_the_environment() -> None:
    assert overrides("") == {} and overrides("  ") == {}
    assert overrides('{"max_model_len": 4096, "enforce_eager": false}') == {"max_model_len": 4096,
                                                                           "enforce_eager": False}
    with pytest.raises(BadPolicySpec, match="is not JSON"):
        overrides("{max_model_len: 4096}")
    with pytest.raises(BadPolicySpec, match="must be a JSON object"):
        overrides("[1, 2]")
