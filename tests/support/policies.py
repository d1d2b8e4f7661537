"""Fixtures for the policy tests: the converted local model and a real OpenAI-compatible
server (`transformers serve`) on a free loopback port, each started once per session."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import pytest

from automem.bench import adapters
from automem.bench.serve import ServerFailed, served
from automem.engine.policy.base import PolicyRequest
from automem.engine.policy.convert import ensure_converted
from automem.engine.policy.local import LocalPolicy, default_local_policy

SYSTEM = (
    "You are an agent playing Crafter. You keep notes in memory files: map_notes.txt,"
    " crafting_progress.txt, survival_log.txt, actions_log.txt, strategy.txt. Write"
    " <|APPEND|>file|line<|END|> to add a line and <|DONE|> when finished."
)


@pytest.fixture(scope="session")
def converted_model() -> Path:
    """The default cache folder: converted once (about 30 s), then reused across runs."""
    return ensure_converted()


@pytest.fixture(scope="session")
def local_policy(converted_model: Path) -> LocalPolicy:
    return default_local_policy()


@pytest.fixture(scope="session")
def uncached_policy(converted_model: Path) -> LocalPolicy:
    """The reference for the prefix cache: every call prefills its whole prompt."""
    return LocalPolicy(converted_model, "uncached", prefix_cache=False)


@pytest.fixture(scope="session")
def served_model(converted_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(model, base_url) of `transformers serve` preloaded with the converted folder."""
    pytest.importorskip("fastapi", reason="transformers serve needs the serving extra (pip install -e .[dev])")
    try:
        with served(converted_model, tmp_path_factory.mktemp("serve") / "serve.log") as url:
            yield str(converted_model), url
    except ServerFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A base URL whose server accepts connections and never answers: a hung model server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture(scope="session")
def random_adapter(converted_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter of the embedded model with random, non-zero weights: it changes answers."""
    return adapters.random_adapter(converted_model, tmp_path_factory.mktemp("adapter") / "random-adapter", rank=4,
                                   alpha=64, targets=("q_proj", "v_proj"))


def register_version(log: object, data: Path, adapter: Path, base: str = "local", dataset: str = "ds-test") -> str:
    """Put `adapter` in the store as a model version, the way `automem train` does; returns its name."""
    import hashlib
    import shutil

    from automem.engine.policy.adapters import files_digest
    from automem.schemas.events import ModelVersionCreated

    sha = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    name = f"mem-{sha[:12]}"
    target = data / "models" / name
    if not target.exists():
        shutil.copytree(adapter, target)
    log.append(f"model/{name}", 0, [ModelVersionCreated(  # type: ignore[attr-defined]
        name=name, base=base, adapter=f"models/{name}", sha256=sha, dataset=dataset, files_sha256=files_digest(adapter))])
    return name


def promote(log: object, name: str, replaces: str = "") -> None:
    """Append a promotion to the memory role's history, as `automem eval --promote` does."""
    from automem.schemas.events import ModelVersionPromoted
    from automem.schemas.streams import role_stream

    stream = role_stream("memory")
    log.append(stream, log.head(stream), [  # type: ignore[attr-defined]
        ModelVersionPromoted(name=name, role="memory", replaces=replaces)])


def chat(*turns: str, max_tokens: int = 16, stop: tuple[str, ...] = ()) -> PolicyRequest:
    """A system prompt, then alternating user and assistant turns."""
    roles = ("user", "assistant")
    messages = ({"role": "system", "content": SYSTEM},) + tuple(
        {"role": roles[i % 2], "content": text} for i, text in enumerate(turns)
    )
    return PolicyRequest(messages=messages, max_tokens=max_tokens, stop=stop)
