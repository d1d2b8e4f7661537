"""Model versions in use: `model:NAME` resolves a version from the log (its adapter's
sha256 checked first), and two roles on one base model share one copy of its weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automem.engine.episodes.replay import replay
from automem.engine.log import LmdbLog
from automem.engine.models.load import make_policies
from automem.engine.policy.local import LocalPolicy
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.events import EpisodeStarted, LLMCalled

from ..support.cli import assert_user_error, automem
from ..support.policies import chat, register_version


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def _version_with_dataset(log: LmdbLog, data: Path, adapter: Path, train_seeds: list[int]) -> str:
    """A version whose dataset came from random episodes of crafter on `train_seeds`."""
    from automem.schemas.events import DatasetBuilt

    ids = [s.id for s in run(RunRequest(env="crafter", task=None, episodes=len(train_seeds), max_steps=3,
                                        seed=train_seeds[0], policy="random", data=str(data)))]
    log.append("dataset/ds-eval", 0, [DatasetBuilt(dataset="ds-eval", examples=1, sha256="x", path="p", episodes=tuple(ids))])
    return register_version(log, data, adapter, dataset="ds-eval")


@pytest.mark.slow
def test_eval_compares_on_the_same_seeds_reuses_episodes_and_promotes_only_a_winner(
        tmp_path: Path, random_adapter: Path) -> None:
    from automem.engine.evaluation import evaluate
    from automem.engine.models.registry import promoted

    data = tmp_path / "d"
    with LmdbLog(data) as log:
        name = _version_with_dataset(log, data, random_adapter, [0, 1])
        first = evaluate(log, data, name, "crafter", None, [5, 6], 2)
        assert first.baseline == "" and first.candidate.reused == 0 and first.incumbent.reused == 0
        assert len(first.paired) == 2 and first.interval[0] <= first.mean_difference <= first.interval[1]
        assert not first.promoted and "not asked" in first.decision and promoted(log) is None
        assert set(first.candidate.figures) >= {"command_error_rate", "writes_read_share", "true_claim_share"}
        episodes = len(log.streams("ep"))
        second = evaluate(log, data, name, "crafter", None, [5, 6], 2, promote=True)
        assert second.candidate.reused == second.incumbent.reused == 2 and len(log.streams("ep")) == episodes
        assert second.paired == first.paired  # the same episodes, the same comparison
        assert second.promoted == (second.mean_difference > 0) and (promoted(log) == name) == second.promoted
        evaluated = [r.event for r in log.read_stream(f"model/{name}")][1:]
        assert [type(e).__name__ for e in evaluated] == ["ModelVersionEvaluated"] * 2
        assert evaluated[0].seeds == (5, 6) and len(evaluated[0].episodes) == 2


@pytest.mark.slow
def test_eval_refuses_training_seeds_and_bad_input(tmp_path: Path, random_adapter: Path) -> None:
    data = tmp_path / "d"
    with LmdbLog(data) as log:
        name = _version_with_dataset(log, data, random_adapter, [3, 4])
    args = ["eval", "--model", name, "--env", "crafter", "--max-steps", "2", "--data", str(data)]
    assert_user_error(automem(*args, "--seeds", "2-4", cwd=tmp_path), "seeds 3, 4 of crafter were used")
    assert_user_error(automem(*args, "--seeds", "9-7", cwd=tmp_path), "bad --seeds")
    assert_user_error(automem(*args, "--seeds", "7", "--metric", "vibes", cwd=tmp_path), "unknown --metric")
    assert_user_error(automem(*args, "--seeds", "7", "--metric", "probe_accuracy", cwd=tmp_path), "needs --probes")
    assert_user_error(automem("eval", "--model", "mem-nope", "--env", "crafter", "--seeds", "7", "--data", str(data),
                              cwd=tmp_path), "unknown model version")
    with LmdbLog(data, create=False) as log:
        assert [r.event for r in log.read_stream(f"model/{name}")][1:] == []  # nothing evaluated, nothing written


@pytest.mark.slow
def test_a_candidate_is_compared_with_the_promoted_version(tmp_path: Path, random_adapter: Path) -> None:
    import shutil

    from automem.engine.evaluation import evaluate
    from automem.engine.models.registry import promoted
    from automem.schemas.errors import UserError
    from automem.schemas.events import ModelVersionPromoted
    from automem.schemas.streams import role_stream

    data = tmp_path / "d"
    other = tmp_path / "other-adapter"
    shutil.copytree(random_adapter, other)
    weights = other / "adapter_model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0x10  # another version: a weight changed in its last bytes, still a valid file
    weights.write_bytes(bytes(raw))
    with LmdbLog(data) as log:
        incumbent = _version_with_dataset(log, data, random_adapter, [0, 1])
        candidate = register_version(log, data, other, dataset="ds-eval")
        log.append(role_stream("memory"), 0, [ModelVersionPromoted(name=incumbent, role="memory")])
        try:
            evaluate(log, data, incumbent, "crafter", None, [5], 2)
            raise AssertionError("evaluating the promoted version against itself must be refused")
        except UserError as exc:
            assert "already the promoted version" in str(exc)
        result = evaluate(log, data, candidate, "crafter", None, [5, 6], 2, promote=True)
        assert result.baseline == incumbent and result.incumbent.models["memory"] == f"model:{incumbent}"
        assert result.promoted == (result.mean_difference > 0)
        history = [r.event for r in log.read_stream(role_stream("memory"))]
        assert promoted(log) == (candidate if result.promoted else incumbent)
        if result.promoted:
            assert history[-1].replaces == incumbent and history[-1].interval == result.interval


def test_a_version_refuses_a_base_that_changed(tmp_path: Path, random_adapter: Path, converted_model: Path) -> None:
    import shutil

    from automem.engine.policy.adapters import base_identity
    from automem.schemas.errors import UserError
    from automem.schemas.events import ModelVersionCreated

    base = tmp_path / "base"
    shutil.copytree(converted_model, base)
    data = tmp_path / "d"
    with LmdbLog(data) as log:
        name = register_version(log, data, random_adapter, base=f"local:{base}")
        created = [r.event for r in log.read_stream(f"model/{name}")][0]
        log.append(f"model/{name}-b", 0, [ModelVersionCreated(**{**{f: getattr(created, f) for f in created.__struct_fields__},
                                                                  "name": f"{name}-b", "base_identity": base_identity(base)})])
        config = base / "config.json"
        config.write_text(config.read_text().replace('"rms_norm_eps"', '"rms_norm_eps_changed": 1, "rms_norm_eps"'))
        try:
            make_policies("random", f"model:{name}-b", log, data)
            raise AssertionError("a changed base must be refused")
        except UserError as exc:
            assert "trained on another" in str(exc)


def test_every_file_that_decides_a_version_is_checked_and_a_missing_base_is_one_line(
        tmp_path: Path, random_adapter: Path, converted_model: Path) -> None:
    """Issue 25, 2: an edited lora_alpha loaded silently under the same name; a base folder that
    is gone ended in a FileNotFoundError traceback."""
    import json
    import shutil

    from automem.schemas.errors import UserError

    base = tmp_path / "base"
    shutil.copytree(converted_model, base)
    data = tmp_path / "d"
    with LmdbLog(data) as log:
        name = register_version(log, data, random_adapter, base=f"local:{base}")
        config = data / "models" / name / "adapter_config.json"
        original = config.read_text()
        config.write_text(json.dumps({**json.loads(original), "lora_alpha": 1024}))
        with pytest.raises(UserError, match="another adapter_config.json than it was trained with"):
            make_policies("random", f"model:{name}", log, data)
        config.write_text(original)
        shutil.rmtree(base)
    run_args = ["run", "--env", "crafter", "--max-steps", "1", "--policy", "random", "--data", str(data)]
    assert_user_error(automem(*run_args, "--memory-policy", f"model:{name}", cwd=tmp_path), "whose folder")
