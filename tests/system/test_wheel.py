"""automem as users get it: the sdist, a wheel built from it, installed into a fresh
virtual environment, and the README's commands run from outside the checkout.

The new environment has no automem but the wheel's; its dependencies come from the
project's environment through a path entry (its `.pth` files, among them the editable
install's finder, are not processed), so the test needs no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOTS = ("engine", "schemas", "consumers", "bench")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc


def _source_modules() -> set[str]:
    """Every module file the checkout has, as its path inside the installed package."""
    return {f"automem/{p.relative_to(ROOT).as_posix()}" for root in PACKAGE_ROOTS
            for p in (ROOT / root).rglob("*.py") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel that was built from the sdist; returns its bin folder."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"], ROOT)
    (sdist,) = out.glob("automem-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(out / "src", filter="data")
    (unpacked,) = (out / "src").iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(unpacked)], out)
    (wheel,) = out.glob("automem-*.whl")
    in_wheel = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    assert _source_modules() - in_wheel == set(), "modules missing from the wheel"
    venv = out / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], out)
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q",
          str(wheel)], out)
    site = _run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], out)
    Path(site.stdout.strip(), "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


@pytest.mark.slow
def test_the_readme_commands_from_an_installed_wheel(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOMEM_DATA", "PYTHONPATH")}
    where = _run([str(installed / "python"), "-c", "import automem.engine.cli as m; print(m.__file__)"], tmp_path, env)
    assert where.stdout.startswith(str(installed.parent)), "automem was not imported from the wheel"

    def automem(*args: str) -> str:
        return _run([str(installed / "automem"), *args], tmp_path, env).stdout

    assert automem("--version").strip().startswith("automem ")
    run = json.loads(automem("run", "--env", "crafter", "--policy", "random", "--max-steps", "12", "--json"))
    (episode,) = [e["id"] for e in run["episodes"]]
    assert [e["id"] for e in json.loads(automem("episodes", "--json"))["episodes"]] == [episode]
    shown = json.loads(automem("show", episode, "--json"))
    assert [s["step"] for s in shown["steps"]] == list(range(12))
    assert "step 3" in automem("show", episode, "--from", "3", "--to", "4")
    assert json.loads(automem("memory", episode, "--at", "5", "--json"))["files"]
    assert "files" in json.loads(automem("memory", episode, "--diff", "2", "9", "--json"))
    assert json.loads(automem("replay", episode, "--json"))["verified"] == 12
    assert "failure" in json.loads(automem("audit", episode, "--json"))
    page = tmp_path / "ep.html"
    automem("report", episode, "-o", str(page))
    assert page.read_text().lower().startswith("<!doctype html>")
    assert "crafter" in json.loads(automem("envs", "--json"))["envs"]
    reviewer = tmp_path / "reviewer.jsonl"
    reviewer.write_text('{"text": "Keep it as it is."}\n' * 6)
    loop = json.loads(automem("loop", "run", "--policy", "random", "--structure", "v0-small", "--loops", "1",
                              "--reviewer", f"file:{reviewer}", "--episodes", "1", "--max-steps", "3", "--json"))
    assert [r["status"] for r in loop["iterations"]] == ["finished"]
    assert json.loads(automem("loop", "status", "--json"))["loop"] == loop["loop"]
    automem("loop", "report", "-o", str(tmp_path / "loop.html"))
    assert (tmp_path / "loop.html").read_text().lower().startswith("<!doctype html>")
