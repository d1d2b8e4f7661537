"""Model versions in use: `model:NAME` resolves a version from the log (its adapter's
sha256 checked first), and two roles on one base model share one copy of its weights."""

from __future__ import annotations

import json
from pathlib import Path

from automem.engine.log import LmdbLog
from automem.engine.policy.local import LocalPolicy
from automem.engine.policy.spec import make_policies
from automem.engine.replay import replay
from automem.engine.runner import RunRequest, run
from automem.schemas.events import EpisodeStarted, LLMCalled

from .policy_fixtures import register_version
from .test_cli_core import assert_user_error, automem
from .test_policy import chat


def test_two_roles_on_one_base_share_its_weights(tmp_path: Path, random_adapter: Path, local_policy: LocalPolicy) -> None:
    with LmdbLog(tmp_path / "d") as log:
        name = register_version(log, tmp_path / "d", random_adapter)
        agent, memory = make_policies("local", f"model:{name}", log, tmp_path / "d")
    assert memory is not None and memory.name == f"model:{name}" and agent.name == local_policy.name
    assert agent._model is memory._model  # type: ignore[attr-defined]  # one copy of the weights
    request = chat("Step 3: you see a tree to the north. Record it.", max_tokens=12)
    base = local_policy.complete(request).text
    assert agent.complete(request).text == base  # the adapter is off for the action role
    assert memory.complete(request).text != base  # and on for the memory role
    assert agent.complete(request).text == base  # switching back and forth leaves no trace


def test_a_two_model_episode_with_a_version_replays(tmp_path: Path, random_adapter: Path) -> None:
    data = tmp_path / "d"
    with LmdbLog(data) as log:
        name = register_version(log, data, random_adapter)
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=3, seed=0, policy="local",
                               memory_policy=f"model:{name}", data=str(data)))
    with LmdbLog(data, create=False) as log:
        events = [r.event for r in log.read_stream(f"ep/{summary.id}")]
        start = events[0]
        assert isinstance(start, EpisodeStarted) and start.models["memory"] == f"model:{name}"
        assert {e.role for e in events if isinstance(e, LLMCalled)} == {"agent", "memory"}
        assert replay(log, summary.id).divergence is None


def test_unknown_tampered_or_unpromoted_versions_are_refused(tmp_path: Path, random_adapter: Path) -> None:
    data = tmp_path / "d"
    with LmdbLog(data) as log:
        name = register_version(log, data, random_adapter)
    run_args = ["run", "--env", "crafter", "--max-steps", "2", "--policy", "random", "--data", str(data)]
    assert_user_error(automem(*run_args, "--memory-policy", "model:mem-nope", cwd=tmp_path), "unknown model version")
    assert_user_error(automem(*run_args, "--memory-policy", "model:promoted", cwd=tmp_path), "no model version is promoted")
    weights = data / "models" / name / "adapter_model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 1
    weights.write_bytes(bytes(raw))
    assert_user_error(automem(*run_args, "--memory-policy", f"model:{name}", cwd=tmp_path), "was changed")
    episodes = json.loads(automem("episodes", "--json", "--data", str(data), cwd=tmp_path).stdout)["episodes"]
    assert episodes == []  # refused before any episode began
