"""Files beside the log on a full disk, a read-only folder, a file where a folder should be,
and a killed `train`: exit 2 with one line naming the path, checked before long work, no
half-written file under a final name, nothing in the log that claims a file not written.

A full disk is a real one (a small tmpfs) and a read-only folder a real read-only mount, both
made in a private mount namespace (`unshare -rm`), which needs no privileges where user
namespaces are enabled; where they are not, those cases are skipped and the others still run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from automem.engine.log import LmdbLog
from automem.engine.policy.convert import MODEL_ID

from ..support.cli import AUTOMEM, assert_user_error, automem
from ..support.training import conversation, write_dataset


def _namespaces() -> bool:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"],
                           capture_output=True) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _namespaces(), reason="no private mount namespace (unshare -rm) here")


def full(folder: Path, size: str = "16k") -> str:
    return f"mount -t tmpfs -o size={size} tmpfs '{folder}'"


def read_only(folder: Path) -> str:
    return f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}'"


def confined(mounts: list[str], *args: str, cwd: Path, env: dict[str, str] | None = None,
             after: str = "true") -> subprocess.CompletedProcess:
    """`automem ARGS` after `mounts`, in a mount namespace of its own (the mounts end with it);
    `after` runs there too, its output after the command's, and the command's status is kept."""
    script = " && ".join(mounts) + f'; "$@"; status=$?; {after}; exit $status'
    base = {k: v for k, v in os.environ.items() if k != "AUTOMEM_DATA"}
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *AUTOMEM, *args], cwd=cwd,
                          capture_output=True, text=True, env={**base, **(env or {})}, timeout=300)


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2 and one error line, the last thing on stderr (a model load's progress bar may come before it)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("automem: error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0] and all(n in errors[0] for n in needles), proc.stderr


def streams(data: Path, prefix: str) -> list[str]:
    with LmdbLog(data, create=False) as log:
        return log.streams(prefix)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of two short random-policy Crafter episodes, scored: a dataset can be built from it."""
    data = tmp_path_factory.mktemp("scored") / "data"
    for args in (["run", "--env", "crafter", "--policy", "random", "--max-steps", "12", "--episodes", "2"],
                 ["score"]):
        proc = automem(*args, "--data", str(data), cwd=data.parent)
        assert proc.returncode == 0, proc.stderr
    return data


@pytest.fixture
def store(scored: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(scored, data)
    return data


@pytest.fixture
def trainable(converted_model: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A store with one dataset of the base's own answers, and a config of a few quick steps."""
    data = tmp_path / "data"
    write_dataset(data, "ds-own", [conversation(i) for i in range(4)], [MODEL_ID])
    config = tmp_path / "fast.json"
    config.write_text(json.dumps({"max_steps": 2, "batch_size": 2, "warmup_ratio": 0.0}))
    return data, config


def build(data: Path) -> list[str]:
    return ["dataset", "build", "--min-score", "-100", "--data", str(data)]


# ----------------------------------------------------------------------------- datasets


@needs_mounts
@pytest.mark.parametrize("mount", ["full", "read-only"])
def test_a_dataset_on_a_full_or_read_only_folder_is_one_line_and_claims_nothing(store: Path, mount: str) -> None:
    folder = store / "datasets"
    folder.mkdir()
    proc = confined([full(folder) if mount == "full" else read_only(folder)], *build(store), cwd=store.parent)
    assert_user_error(proc, "cannot write the dataset", str(folder),
                      "free space on it" if mount == "full" else "read-only file system")
    assert streams(store, "dataset") == [] and leftovers(folder) == []
    assert automem(*build(store), cwd=store.parent).returncode == 0  # nothing in the way once there is room


def test_a_file_where_the_datasets_folder_should_be(store: Path) -> None:
    (store / "datasets").write_text("not a folder")
    assert_user_error(automem(*build(store), cwd=store.parent), "has a file where a folder should be",
                      str(store / "datasets"))
    assert streams(store, "dataset") == []


# ----------------------------------------------------------------------------- model versions


@needs_mounts
def test_train_on_a_full_disk_is_refused_before_it_trains(trainable: tuple[Path, Path]) -> None:
    """The adapter's size is known once LoRA is applied: a disk without room for it refuses
    before the first step, not after the last."""
    data, config = trainable
    models = data / "models"
    models.mkdir()
    proc = confined([full(models, "2m")], "train", "--data", str(data), "--config", str(config), cwd=data.parent)
    assert_refused(proc, "cannot write the model version", str(models), "free space on it")
    assert "loss" not in proc.stdout and streams(data, "model") == [] and leftovers(models) == []


def test_a_write_that_fails_after_the_check_is_still_one_line(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    """A limit no free-space check sees (ulimit -f: the 3.6 MB adapter passes 2 MB) fails the
    write itself, inside safetensors' own error type: still one line, nothing left behind."""
    import resource

    data, config = trainable
    limit = 2 << 20

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([*AUTOMEM, "train", "--data", str(data), "--config", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, preexec_fn=limited)
    assert_refused(proc, "cannot write the model version", str(data / "models"), "file size limit")
    assert streams(data, "model") == [] and leftovers(data / "models") == []


@needs_mounts
def test_train_on_a_read_only_folder_is_one_line(trainable: tuple[Path, Path]) -> None:
    data, config = trainable
    models = data / "models"
    models.mkdir()
    proc = confined([read_only(models)], "train", "--data", str(data), "--config", str(config), cwd=data.parent)
    assert_refused(proc, "cannot write the model version", str(models), "read-only")
    assert streams(data, "model") == []


def test_train_refuses_a_file_where_its_folders_should_be(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = trainable
    (data / "models").write_text("not a folder")
    assert_refused(automem("train", "--data", str(data), "--config", str(config), cwd=tmp_path),
                      "has a file where a folder should be", str(data / "models"))
    (data / "models").unlink()
    served = tmp_path / "served"
    served.write_text("not a folder")
    proc = subprocess.run([*AUTOMEM, "train", "--data", str(data), "--config", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "AUTOMEM_ADAPTERS_DIR": str(served)})
    assert_refused(proc, "the served copy", str(served))
    assert streams(data, "model") == []


def test_a_killed_train_leaves_no_scratch_folder_behind(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    data, config = trainable
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({"max_steps": 500, "batch_size": 2}))
    models = data / "models"
    proc = subprocess.Popen([*AUTOMEM, "train", "--data", str(data), "--config", str(slow)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not leftovers(models) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(models), "train never began"
    time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [n for n in leftovers(models) if n.startswith(".scratch")]  # what the kill left
    done = automem("train", "--data", str(data), "--config", str(config), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name = json.loads(done.stdout)["model_version"]
    assert leftovers(models) == [name]  # the next train removed it; no empty trainer folder either


def test_a_version_s_config_file_is_the_same_bytes_every_run(trainable: tuple[Path, Path], tmp_path: Path) -> None:
    """peft writes target_modules from a set in hash order; the version's digest covers that file,
    so two runs of one training must write it alike (different hash seeds: different orders)."""
    data, config = trainable
    written = []
    for seed in ("1", "2"):
        other = tmp_path / f"copy{seed}"
        shutil.copytree(data, other)
        proc = subprocess.run([*AUTOMEM, "train", "--data", str(other), "--config", str(config), "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        written.append((Path(json.loads(proc.stdout)["adapter"]) / "adapter_config.json").read_bytes())
    assert written[0] == written[1]


# ----------------------------------------------------------------------------- pages and backups


@needs_mounts
def test_a_page_into_a_read_only_folder_is_refused_before_the_audit(store: Path, tmp_path: Path) -> None:
    [episode] = streams(store, "ep")[:1]
    pages = tmp_path / "pages"
    pages.mkdir()
    proc = confined([read_only(pages)], "report", episode.removeprefix("ep/"), "-o", str(pages / "e.html"),
                    "--data", str(store), cwd=tmp_path)
    assert_refused(proc, "cannot write the page", str(pages), "read-only")


@needs_mounts
def test_a_backup_onto_a_full_disk_leaves_no_data_file(store: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = confined([full(disk, "64k")], "store", "backup", str(disk / "b"), "--data", str(store), cwd=tmp_path)
    assert_refused(proc, "cannot write the backup", str(disk / "b"), "free space on it")
    assert automem("store", "check", "--data", str(store), cwd=tmp_path).returncode == 0  # the store is not blamed


@needs_mounts
def test_a_restore_onto_a_full_disk_leaves_the_store_as_it_was(store: Path, tmp_path: Path) -> None:
    """The backup is copied in full before the store's data is touched: no room, no change."""
    backup = tmp_path / "backup"
    assert automem("store", "backup", str(backup), "--data", str(store), cwd=tmp_path).returncode == 0
    data = store / "data.mdb"
    before = hashlib.sha256(data.read_bytes()).hexdigest()
    used = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    room = f"{used // 1024 + 32}k"  # the store's files fit, a second copy of its data does not
    proc = confined([f"cp -a '{store}' '{tmp_path}/kept'", full(store, room), f"cp -a '{tmp_path}/kept/.' '{store}/'"],
                    "store", "restore", str(backup), "--data", str(store), cwd=tmp_path,
                    after=f"ls -A '{store}' >&2; sha256sum '{data}'")
    assert proc.returncode == 2 and "cannot write the restored store" in proc.stderr, proc.stderr
    assert str(store) in proc.stderr and "free space on it" in proc.stderr
    assert "data.mdb.restoring" not in proc.stderr and "before-restore" not in proc.stderr  # the listing
    assert proc.stdout.split()[0] == before


@needs_mounts
def test_loop_run_refuses_a_read_only_models_folder_before_it_records_a_loop(store: Path, tmp_path: Path) -> None:
    models = store / "models"
    models.mkdir()
    proc = confined([read_only(models)], "loop", "run", "--loops", "2", "--policy", "random", "--episodes", "1",
                    "--max-steps", "2", "--data", str(store), cwd=tmp_path)
    assert_refused(proc, "the loop's model versions", str(models), "read-only")
    assert streams(store, "loop") == []


@needs_mounts
def test_a_model_cache_on_a_full_disk_is_refused_before_converting(tmp_path: Path) -> None:
    """The bundled GGUF's conversion writes about 540 MB: a cache without room for its lower
    bound is one line naming the folder, before the 30 s of converting."""
    cache = tmp_path / "cache"
    cache.mkdir()
    proc = confined([full(cache, "1m")], "run", "--env", "crafter", "--policy", "local", "--max-steps", "1",
                    "--data", str(tmp_path / "d"), cwd=tmp_path, env={"AUTOMEM_CACHE": str(cache)})
    assert_refused(proc, "cannot write the converted model", "AUTOMEM_CACHE", str(cache / "models"), "free space on it")
