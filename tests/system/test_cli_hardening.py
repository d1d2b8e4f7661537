"""Hostile input at the command line: every case ends with exit 2 and one line (or a clean
exit), nothing reaches the terminal raw, and nothing is written into a store's folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automem.engine.log import LmdbLog
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run

from ..support.cli import AUTOMEM, assert_user_error, automem

HOSTILE = "\x1b]0;pwned\x07\x1b[2J[bold red]loud[/] \x9b31m"


def _sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with one Crafter episode whose model wrote terminal escapes and rich markup into memory."""
    root = tmp_path_factory.mktemp("hostile")
    answers = root / "answers.jsonl"
    plan = "<|READ|>strategy.txt<|END|><|ACTION|>Noop<|END|>"
    lines = [plan] + [f"<|APPEND|>strategy.txt|{HOSTILE}<|END|><|DONE|>", plan] * 2
    answers.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=3, seed=0, policy=f"file:{answers}",
                               structure="v0", data=str(root / "data")))
    return root, summary.id


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["memory", "{ep}", "--at", "1"], ["memory", "{ep}", "--diff", "0", "2"], ["audit", "{ep}", "--failure", "2"],
    ["show", "{ep}"],
])
def test_log_text_reaches_the_terminal_escaped(hostile: tuple[Path, str], args: list[str]) -> None:
    root, episode = hostile
    argv = [a.format(ep=episode) for a in args]
    proc = automem(*argv, "--data", str(root / "data"), cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout and "\x9b" not in proc.stdout
    if argv[0] != "audit":  # the audit may not quote the line; where it is shown, it is shown literally
        assert "\\x1b]0;pwned\\x07" in proc.stdout and "[bold red]loud[/]" in proc.stdout
    if argv[0] != "audit":  # --json stays exact
        exact = automem(*argv, "--json", "--data", str(root / "data"), cwd=root)
        assert any(HOSTILE in text for text in _strings(json.loads(exact.stdout)))


def _strings(doc: object) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    items = doc.values() if isinstance(doc, dict) else doc if isinstance(doc, list) else []
    return [s for item in items for s in _strings(item)]


@pytest.mark.slow
def test_report_never_writes_into_the_store(hostile: tuple[Path, str]) -> None:
    root, episode = hostile
    data = root / "data"
    before = _sha(data)
    (root / "inside.html").symlink_to(data / "data.mdb")
    for target in (data / "data.mdb", data / "page.html", root / "inside.html", data):
        assert_user_error(automem("report", episode, "-o", str(target), "--data", str(data), cwd=root),
                          "inside the store")
    env_data = {**os.environ, "AUTOMEM_DATA": str(data)}
    proc = subprocess.run([*AUTOMEM, "report", episode, "-o", str(data / "x.html")], cwd=root, capture_output=True,
                          text=True, env=env_data, timeout=120)
    assert_user_error(proc, "inside the store")
    assert_user_error(automem("report", episode, "-o", "", "--data", str(data), cwd=root), "give the file")
    assert _sha(data) == before and not (data / "page.html").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("args", "needle"), [
    (["run", "--seed", str(2**70)], "--seed"),
    (["run", "--max-steps", str(2**64)], "--max-steps"),
    (["run", "--seed", str(2**63 - 1), "--episodes", "2"], "do not fit"),
    (["run", "--episodes", "99999999999999999999"], "--episodes"),
    (["run", "--seed", "-1"], "--seed"),
    (["run", "--workers", "100000"], "--workers"),
    (["run", "--concurrency", "0"], "--concurrency"),
    (["run", "--concurrency", "100000"], "--concurrency"),
    (["worker", "--concurrency", "-3"], "--concurrency"),
    (["bench", "rollout", "--concurrency", "1,x"], "give counts separated by commas"),
    (["bench", "rollout", "--concurrency", "0"], "--concurrency must be 1 to 1024"),
    (["submit", "--seed", str(2**70)], "--seed"),
    (["audit", "x", "--counterfactual", "--policy", "random", "--horizon", "1e23"], "--horizon"),
    (["audit", "x", "--horizon", "4"], "--counterfactual"),
    (["run", "--bogus"], "No such option"),
    (["run", "--seed", "abc"], "--seed"),
    (["memory"], "Missing argument"),
    (["nope"], "No such command"),
])
def test_out_of_range_and_usage_errors_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    assert_user_error(automem(*args, cwd=tmp_path), needle)
    assert not (tmp_path / "automem-data").exists()


def test_non_utf8_arguments_are_refused_in_one_line(tmp_path: Path) -> None:
    for args in ([b"replay", b"ep-\xff"], [b"episodes", b"--data", b"/tmp/\xfe\xff"]):
        proc = subprocess.run([os.fsencode(a) for a in AUTOMEM] + args, cwd=tmp_path, capture_output=True, timeout=60)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and b"not valid UTF-8" in proc.stderr


@pytest.mark.slow
def test_a_failing_run_creates_no_store(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    for spec in (f"file:{bad}", f"file:{tmp_path / 'missing.jsonl'}"):
        assert_user_error(automem("run", "--policy", spec, "--data", str(tmp_path / "d"), cwd=tmp_path), "")
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "<|ACTION|>Noop<|END|>"}\n')
    assert_user_error(automem("run", "--policy", f"file:{good}", "--workers", "2", "--episodes", "2", "--data",
                              str(tmp_path / "d"), cwd=tmp_path), "--workers 1")
    assert not (tmp_path / "d").exists()


def test_zero_step_episode_says_it_took_none(tmp_path: Path) -> None:
    from automem.schemas.events import EpisodeStarted

    with LmdbLog(tmp_path / "d") as log:
        log.append("ep/e0", 0, [EpisodeStarted(episode="e0", env="crafter", task="default", seed=0, max_steps=3,
                                               structure="v0", models={}, engine_version="t")])
    proc = automem("memory", "e0", "--at", "0", "--data", str(tmp_path / "d"), cwd=tmp_path)
    assert_user_error(proc, "took none")
    assert "0..-1" not in proc.stderr


@pytest.mark.slow
def test_a_reader_closing_the_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=150, seed=1, policy="random",
                               data=str(tmp_path / "d")))
    proc = subprocess.Popen([*AUTOMEM, "show", summary.id, "--data", str(tmp_path / "d")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0 and proc.stderr.read() == b""


@pytest.mark.slow
def test_a_crashed_episode_is_interrupted_with_its_steps(tmp_path: Path) -> None:
    """A writer killed mid-episode leaves no lease: the listing says interrupted, with the steps it took."""
    data = tmp_path / "d"
    code = ("import os, sys\n"
            "from automem.engine.rollout.request import RunRequest\n"
            "from automem.engine.rollout.run import run\n"
            "from automem.engine.agent.episode import Episode\n"
            "steps = Episode.steps\n"
            "def dying(self, on_step=None):\n"
            "    return steps(self, lambda n: os._exit(9) if n == 7 else None)\n"
            "Episode.steps = dying\n"
            f"run(RunRequest(env='crafter', task=None, episodes=1, max_steps=50, seed=0, policy='random', data={str(data)!r}))\n")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 9
    proc = automem("episodes", "--json", "--data", str(data), cwd=tmp_path)
    [row] = json.loads(proc.stdout)["episodes"]
    # group commit: the steps still buffered at the kill are lost, whole, and the episode stays listed
    assert row["status"] == "interrupted" and 0 <= row["steps"] <= 7, row


def test_vllm_absent_is_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed in this environment")
    proc = automem("run", "--env", "crafter", "--max-steps", "1", "--policy", "vllm:/models/any", "--data",
                   str(tmp_path / "d"), cwd=tmp_path)
    assert_user_error(proc, "needs vLLM", "./scripts/setup --with-vllm")
    if (tmp_path / "d").exists():
        with LmdbLog(tmp_path / "d", create=False) as log:
            assert not log.streams("ep")  # refused before any episode began
