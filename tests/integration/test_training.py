"""Loop 2's trainer on the CPU: the loss mask, a few LoRA steps on SmolLM2, versions, refusals, the consumer under SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest

from automem.engine.cli import main
from automem.engine.log import LmdbLog, open_log
from automem.engine.policy.base import PolicyRequest
from automem.engine.policy.convert import MODEL_ID
from automem.engine.policy.local import LocalPolicy
from automem.engine.training import config as cfg
from automem.engine.training.data import IGNORE, prepare, tokenize
from automem.engine.training.plot import loss_html
from automem.engine.training.trainer import load_tokenizer
from automem.schemas.events import ModelVersionCreated

from ..support.broker import Broker
from ..support.training import conversation, tamper, write_dataset

FAST = {"max_steps": 3, "batch_size": 2, "learning_rate": 1e-2, "warmup_ratio": 0.0}  # a certain change, quickly


def automem(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in-process (torch stays imported between calls): (status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def only_dataset(data: Path) -> str:
    """The id of the one dataset in a store."""
    with LmdbLog(data, create=False) as log:
        [stream] = log.streams("dataset")
    return stream.removeprefix("dataset/")


def versions(data: Path) -> list[ModelVersionCreated]:
    with LmdbLog(data, create=False) as log:
        return [r.event for s in log.streams("model") for r in log.read_stream(s)
                if isinstance(r.event, ModelVersionCreated)]


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "fast.json"
    path.write_text(json.dumps(FAST))
    return path


@pytest.fixture(scope="module")
def trained(converted_model: Path, fast_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store with one dataset of the base's own answers, trained once through `automem train --json`."""
    data = tmp_path_factory.mktemp("trained") / "data"
    write_dataset(data, "ds-own", [conversation(i) for i in range(6)], [MODEL_ID])
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", str(data), "--config", str(fast_config), "--json"])
    assert exit_.value.code == 0
    return data


# ----------------------------------------------------------------------------- pure parts


def test_loss_is_on_the_final_answer_and_end_of_turn_only(converted_model: Path) -> None:
    tokenizer = load_tokenizer(converted_model)
    for messages in (conversation(3), conversation(4, turns=3)):
        out = tokenize(tokenizer, messages)
        assert out is not None and len(out.input_ids) == len(out.labels)
        carried = [t for t, label in zip(out.input_ids, out.labels) if label != IGNORE]
        assert tokenizer.decode(carried) == messages[-1]["content"] + "<|im_end|>"
        assert carried == out.input_ids[-len(carried):], "the loss tokens are the conversation's last ones"
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        assert tokenizer.decode(out.input_ids[:-len(carried)]) == prompt, "everything before them is the prompt"
    assert prepare(tokenizer, [conversation(1)], max_length=20).too_long == 1


def test_config_defaults_by_size_and_overrides(tmp_path: Path) -> None:
    small, large = cfg.defaults(135_000_000), cfg.defaults(32_000_000_000)
    assert (small.rank, small.alpha, small.target_modules) == (8, 16, "attention")
    assert (large.rank, large.alpha, large.learning_rate, large.schedule, large.warmup_ratio) == (128, 256, 5e-5, "cosine", 0.05)
    toml = tmp_path / "c.toml"
    toml.write_text('rank = 4\ntarget_modules = ["q_proj", "v_proj"]\n')
    config = cfg.resolve(135_000_000, cfg.read_overrides(toml), max_steps=7)
    assert (config.rank, config.modules, config.max_steps) == (4, ["q_proj", "v_proj"], 7)
    assert cfg.run_digest("d", "b", config) != cfg.run_digest("d", "b", small)
    assert cfg.flatten(config)["target_modules"] == "q_proj,v_proj"
    assert "<polyline" in loss_html([(1, 2.0), (2, 1.5)], "t") and "no steps" in loss_html([], "t")


@pytest.mark.slow
@pytest.mark.parametrize("doc, message", [
    ('{"rnak": 4}', "unknown field `rnak`"),
    ('{"learning_rate": 2}', "learning_rate must be in (0, 1)"),
    ('{"rank": "big"}', "Expected `int`"),
    ("[1]", "must hold a table"),
    ("{", "is not valid JSON"),
])
def test_bad_configs_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: str, message: str) -> None:
    write_dataset(tmp_path / "data", "ds", [conversation(0)], [MODEL_ID])
    (tmp_path / "c.json").write_text(doc)
    status, out, err = automem(capsys, "train", "--data", str(tmp_path / "data"), "--config", str(tmp_path / "c.json"))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not versions(tmp_path / "data")


# --------------------------------------------------------------------------- a CPU run


@pytest.mark.slow
def test_a_cpu_run_makes_an_adapter_that_loads_and_changes_answers(
        trained: Path, converted_model: Path, local_policy: LocalPolicy) -> None:
    data = trained
    [version] = versions(data)
    folder = data / version.adapter
    weights = folder / "adapter_model.safetensors"
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", "loss.html",
                                                        "train_config.json", "training.json"]
    assert version.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert version.name == f"mem-{version.sha256[:12]}" and version.dataset == only_dataset(data)
    assert version.base == "local" and len(version.base_identity) == 32 and not version.distill
    assert version.steps == 3 and version.device == "cpu" and version.loss > 0
    tokenizer = load_tokenizer(converted_model)  # 3 steps of 2: each of the 6 examples once
    assert version.tokens == sum(tokenize(tokenizer, conversation(i)).targets for i in range(6))
    assert version.params["learning_rate"] == "0.01" and version.params["run"]
    assert json.loads((folder / "train_config.json").read_text())["max_steps"] == 3
    request = PolicyRequest(messages=tuple(conversation(9)[:-1]), max_tokens=12)
    tuned = LocalPolicy(converted_model, "tuned", adapter=folder)
    assert tuned.complete(request).text != local_policy.complete(request).text


@pytest.mark.slow
def test_same_dataset_and_config_give_the_same_name_and_no_second_event(
        capsys: pytest.CaptureFixture[str], trained: Path, fast_config: Path, tmp_path: Path) -> None:
    data = trained
    [first] = versions(data)
    status, out, _ = automem(capsys, "train", "--data", str(data), "--config", str(fast_config), "--json")
    again = json.loads(out.splitlines()[-1])
    assert status == 0 and again["model_version"] == first.name and again["new"] is False
    assert versions(data) == [first]
    other = tmp_path / "data"  # a fresh store, the same dataset: trained again, deterministically
    write_dataset(other, "ds-own", [conversation(i) for i in range(6)], [MODEL_ID])
    with warnings.catch_warnings(record=True) as caught:  # issue 25, 8: no transformers deprecation notice
        warnings.simplefilter("always")
        status, out, _ = automem(capsys, "train", "--data", str(other), "--config", str(fast_config), "--json")
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
    assert status == 0 and json.loads(out.splitlines()[-1])["model_version"] == first.name
    [copy] = versions(other)
    assert (copy.sha256, copy.loss, copy.tokens) == (first.sha256, first.loss, first.tokens)


def test_models_lists_the_versions(capsys: pytest.CaptureFixture[str], trained: Path) -> None:
    data = trained
    status, out, _ = automem(capsys, "models", "--data", str(data), "--json")
    [row] = json.loads(out)["models"]
    [version] = versions(data)
    assert status == 0 and row["model_version"] == version.name and row["dataset"] == only_dataset(data)
    assert row["base"] == "local" and row["loss"] == version.loss and row["evaluations"] == row["promotions"] == []
    status, out, _ = automem(capsys, "models", "--data", str(data))
    assert status == 0 and version.name in out


# ------------------------------------------------------------------------------ bad input


@pytest.mark.slow
def test_bad_datasets_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, fast_config: Path) -> None:
    data = tmp_path / "data"
    LmdbLog(data).close()
    status, _, err = automem(capsys, "train", "--data", str(data))
    assert status == 2 and "no datasets in this store: run `automem dataset build` first" in err
    cases = []
    empty = write_dataset(data, "empty", [], [MODEL_ID]).dataset
    cases += [(empty, "has no examples"), ("nope", "unknown dataset 'nope': datasets in this store: ")]
    tampered = write_dataset(data, "tampered", [conversation(0)], [MODEL_ID], sha256="0" * 64).dataset
    cases.append((tampered, "does not match the sha256 of its DatasetBuilt event"))
    gone = write_dataset(data, "gone", [conversation(0)], [MODEL_ID]).dataset
    (data / "datasets" / gone / "examples.jsonl").unlink()
    cases.append((gone, "cannot read"))
    random_answers = write_dataset(data, "random", [conversation(0)], ["random"]).dataset
    cases.append((random_answers, f"holds answers of random, not of the base local ({MODEL_ID}): pass --distill"))
    for dataset, message in cases:
        status, out, err = automem(capsys, "train", "--data", str(data), "--dataset", dataset)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, (dataset, err)
    status, _, err = automem(capsys, "train", "--data", str(tmp_path / "none"))
    assert status == 2 and "no automem data" in err
    status, _, err = automem(capsys, "train", "--data", str(data), "--dataset", random_answers, "--base", str(tmp_path))
    assert status == 2 and "is not a Hugging Face model folder" in err
    assert not versions(data)
    status, out, err = automem(capsys, "train", "--data", str(data), "--dataset", random_answers, "--distill",
                               "--max-steps", "1", "--config", str(fast_config), "--json")
    assert status == 0, err
    [version] = versions(data)
    assert version.distill and version.dataset == random_answers and version.steps == 1


# ------------------------------------------------------------------------- the consumer


@pytest.mark.slow
def test_the_consumer_makes_one_version_per_dataset_under_sigkill(tmp_path: Path, converted_model: Path) -> None:
    data = tmp_path / "data"
    kill = write_dataset(data, "ds-kill", [conversation(i) for i in range(4)], [MODEL_ID]).dataset
    config = tmp_path / "slow.toml"
    config.write_text("max_steps = 4\nbatch_size = 1\n")
    env = {**os.environ, "AUTOMEM_TRAIN_CONFIG": str(config), "AUTOMEM_TRAIN_DEVICE": "cpu"}
    command = [sys.executable, "-c", "from automem.engine.cli import main; main()", "consume", "trainer", "--until-idle"]
    log_path = tmp_path / "stderr"
    with log_path.open("wb") as stderr:
        child = subprocess.Popen([*command, "--data", str(data)], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    while " 1/4 " not in log_path.read_text(errors="replace"):  # the bar after the first of four steps
        assert child.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not versions(data), "killed mid-training: nothing announced"
    again = subprocess.run([*command, "--data", str(data)], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "new version" in again.stderr, again.stderr
    [version] = versions(data)
    assert version.dataset == kill and version.steps == 4
    # the dataset delivered once more (a consumer whose position was lost): found, not trained again
    shutil.copytree(data / "datasets", tmp_path / "positions" / "datasets")  # its files sit in its own --data
    fresh = subprocess.run([*command, "--bus", f"lmdb://{data}", "--data", str(tmp_path / "positions")], env=env,
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0 and f"existing version {version.name}" in fresh.stderr, fresh.stderr
    assert "training:" not in fresh.stderr and versions(data) == [version]


def test_train_bench_runs_the_tiny_config_on_the_cpu() -> None:
    from automem.bench import BENCHES, BenchArgs

    out = BENCHES["train"](BenchArgs())
    assert out["name"] == "train" and out["device"] == "cpu" and set(out["skipped"]) == {"0.5b", "7b"}
    tiny = out["sizes"]["tiny"]
    assert tiny["train_tokens_per_s"] > 0 and tiny["train_peak_mb"] > 0 and 0 < out["ratio"] == tiny["ratio"]


@pytest.mark.slow
def test_the_consumer_trains_on_kafka_for_longer_than_a_poll_interval(
        broker: Broker, tmp_path: Path, converted_model: Path) -> None:
    """No group membership to lose: a training far longer than max_poll_interval_ms still ends in one version."""
    bus = f"kafka://{broker.url}/t{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    event = write_dataset(data, "ds-kafka", [conversation(i) for i in range(4)], [MODEL_ID])
    with open_log(bus) as kafka:
        kafka.append(f"dataset/{event.dataset}", 0, [event])
    config = tmp_path / "c.toml"
    config.write_text("max_steps = 4\nbatch_size = 1\n")
    env = {**{k: v for k, v in os.environ.items() if k != "AUTOMEM_DATA"}, "AUTOMEM_TRAIN_CONFIG": str(config),
           "AUTOMEM_KAFKA_MAX_POLL_MS": "500"}
    command = [sys.executable, "-c", "from automem.engine.cli import main; main()", "consume", "trainer",
               "--until-idle", "--bus", bus, "--data", str(data)]  # datasets, adapters and its position: one folder
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "new version" in done.stderr, done.stderr
    with open_log(bus) as kafka:
        [stream] = kafka.streams("model")
        [record] = list(kafka.read_stream(stream))
    assert isinstance(record.event, ModelVersionCreated) and record.event.dataset == event.dataset
    assert (data / record.event.adapter / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_tampering_with_each_file_of_a_version_in_turn(trained: Path, tmp_path: Path, damage: str) -> None:
    """Issue 25: the files that decide a version's answers (its weights, adapter_config.json) are
    refused in one line when changed, cut or gone; the rest (its training record, train config
    and loss plot) are reports, and the version still loads."""
    from automem.engine.models.load import make_policies
    from automem.engine.policy.adapters import CONFIG, WEIGHTS
    from automem.schemas.errors import UserError

    data = tmp_path / "data"
    shutil.copytree(trained, data)
    [version] = versions(data)
    folder = data / version.adapter
    outcomes = {}
    for path in sorted(folder.iterdir()):
        original = path.read_bytes()
        tamper(path, damage)
        with LmdbLog(data, create=False) as log:
            try:
                make_policies("random", f"model:{version.name}", log, data)
                outcomes[path.name] = "loads"
            except UserError as exc:
                assert "\n" not in str(exc)
                outcomes[path.name] = "refused"
        path.write_bytes(original)
    assert outcomes == {name: "refused" if name in (WEIGHTS, CONFIG) else "loads" for name in outcomes}
    assert set(outcomes) == {WEIGHTS, CONFIG, "training.json", "train_config.json", "loss.html"}
