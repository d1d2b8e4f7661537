"""`automem report`: the page's data, the CLI, and the page itself in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automem.engine.audit.result import AuditResult, Failure, Link, Mistake
from automem.engine.episodes.timetravel import memory_after_step
from automem.engine.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.engine.views.report import edit, episode_report, gather
from automem.schemas.events import (
    EpisodeEnded,
    EpisodeStarted,
    LLMCalled,
    MemoryOp,
    MemoryOpApplied,
    StepTaken,
)
from automem.schemas.streams import episode_stream

from ..support.cli import assert_user_error, automem

HOSTILE = '</script><img src=x onerror="window.__pwned=1"><!--'
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def record(tmp_path: Path, env: str = "crafter", steps: int = 40, policy: str = "random", structure: str = "auto",
           seed: int = 3) -> tuple[Path, str]:
    data = tmp_path / "data"
    [summary] = run(RunRequest(env=env, task=None, episodes=1, max_steps=steps, seed=seed, policy=policy,
                               structure=structure, data=str(data)))
    return data, summary.id


def events_of(data: Path, episode: str) -> list[Any]:
    with LmdbLog(data) as log:
        return [r.event for r in log.read_stream(episode_stream(episode))]


def apply_edit(old: str | None, e: list[Any] | None) -> str | None:
    """What the page's script does with one history entry (offsets in UTF-16 code units)."""
    if e is None:
        return None
    units = (old or "").encode("utf-16-le")
    keep_head, keep_tail, middle = e
    return (units[:2 * keep_head] + middle.encode("utf-16-le") + units[len(units) - 2 * keep_tail:]).decode("utf-16-le")


def files_after(history: dict[str, list[list[Any]]], step: int) -> dict[str, str]:
    files: dict[str, str | None] = {}
    for name, entries in history.items():
        for at, e in entries:
            if at <= step:
                files[name] = apply_edit(files.get(name), e)
    return {k: v for k, v in sorted(files.items()) if v is not None}


text = st.text(alphabet=st.sampled_from("ab\n é🌲\u2028"), max_size=30)


@given(text, text)
def test_an_edit_rebuilds_the_new_content_in_utf16_offsets(old: str, new: str) -> None:
    assert apply_edit(old, edit(old, new)) == new
    assert apply_edit(old, edit(old, None)) is None


@pytest.mark.slow
@pytest.mark.parametrize("env", ["crafter", "nethack", "minihack"])
def test_gathered_memory_and_progression_agree_with_the_log(env: str, tmp_path: Path) -> None:
    data, episode = record(tmp_path, env, steps=40 if env == "crafter" else 15)
    events = events_of(data, episode)
    doc = gather(events)
    steps = doc["steps"]
    assert [s["step"] for s in steps] == list(range(len(steps))) and all(s["taken"] for s in steps)
    with LmdbLog(data) as log:
        store = SnapshotStore(log)
        for s in steps:
            assert files_after(doc["files"], s["step"]) == memory_after_step(log, store, episode, s["step"]).contents()
            before = files_after(doc["files"], s["step"] - 1)
            after = files_after(doc["files"], s["step"])
            assert sorted(s["changed"]) == sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    [ended] = [e for e in events if isinstance(e, EpisodeEnded)]
    assert steps[-1]["prog"] == pytest.approx(ended.progression)  # the env's own final figure
    assert steps[-1]["ret"] == pytest.approx(ended.return_)
    assert doc["progression"] and doc["audit"] is None


def test_a_step_whose_model_call_failed_is_shown_as_not_taken() -> None:
    start = EpisodeStarted(episode="e", env="crafter", task="default", seed=0, max_steps=5, structure="v0",
                           models={"agent": "m"}, engine_version="t")
    ops = [MemoryOpApplied(step=0, phase="init", turn=0, op=MemoryOp("write", "a.txt", ("x\n",)), ok=True, result_digest=""),
           MemoryOpApplied(step=1, phase="log", turn=0, op=MemoryOp("delete", "a.txt"), ok=True, result_digest="")]
    taken = StepTaken(step=0, raw_action="Noop", action="Noop", valid=True, reward=1.0, done=False, observation="o",
                      observation_digest="", memory_digest="")
    failed = LLMCalled(step=1, phase="log", turn=0, role="agent", model="m", prompt_digest="", response="", error="timeout")
    doc = gather([start, ops[0], taken, failed, ops[1]])  # a crashed run: no EpisodeEnded, step 1 never taken
    assert doc["episode"]["status"] == "running" and [s["taken"] for s in doc["steps"]] == [True, False]
    assert doc["files"] == {"a.txt": [[0, [0, 0, "x\n"]], [1, None]]} and doc["steps"][1]["changed"] == ["a.txt"]
    assert [s["ret"] for s in doc["steps"]] == [1.0, 1.0] and doc["steps"][1]["calls"][0]["error"] == "timeout"


@pytest.mark.slow
def test_untrusted_text_cannot_leave_the_data_block(tmp_path: Path) -> None:
    responses = tmp_path / "r.jsonl"
    responses.write_text(json.dumps({"text": f"{HOSTILE}<|ACTION|>Noop<|END|>"}) + "\n")
    data, episode = record(tmp_path, steps=1, policy=f"file:{responses}", structure="v0-small")
    with LmdbLog(data) as log:
        page = episode_report(log, episode, None, f"audit not run: {HOSTILE}")
    assert page.count("</script>") == 2 and "<img" not in page and page.count("<!--") == 0
    assert "\\u003c/script\\u003e\\u003cimg src=x onerror" in page


@pytest.mark.slow
def test_cli_report(tmp_path: Path) -> None:
    data, episode = record(tmp_path, steps=10)
    out = tmp_path / "out" / "ep.html"
    out.parent.mkdir()
    proc = automem("report", episode, "-o", str(out), "--data", str(data), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc == {"episode": episode, "path": str(out), "bytes": out.stat().st_size} and doc["bytes"] > 10_000
    page = out.read_text()
    assert page.startswith("<!doctype html>") and f'"audit":{{"episode":"{episode}"' in page  # the audit ran
    proc = automem("report", episode, "-o", str(out), "--data", str(data), "--failure", "7", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"failure":{"step":7,"rule":"named"' in out.read_text()
    assert_user_error(automem("report", episode, "-o", str(out), "--data", str(data), "--failure", "99", cwd=tmp_path), "out of range")
    assert_user_error(automem("report", episode, "-o", str(out), "--data", str(data), "--failure", "1", "--no-audit", cwd=tmp_path),
                      "cannot go with --no-audit")
    proc = automem("report", episode, "-o", str(out), "--data", str(data), "--no-audit", cwd=tmp_path)
    assert proc.returncode == 0 and str(out) in proc.stdout and "audit not run (--no-audit)" in out.read_text()
    assert_user_error(automem("report", "nope", "-o", str(out), "--data", str(data), cwd=tmp_path), "unknown episode")
    assert_user_error(automem("report", episode, "-o", str(tmp_path / "missing" / "ep.html"), "--data", str(data), cwd=tmp_path),
                      "does not exist")
    assert_user_error(automem("report", episode, "-o", str(tmp_path / "out"), "--data", str(data), cwd=tmp_path), "is a folder")


# ---------------------------------------------------------------- in a real browser


def chromium_path() -> str:
    """Debian's chromium; scripts/setup installs it wherever it can (root with apt-get)."""
    found = shutil.which("chromium") or next((p for p in ("/usr/bin/chromium",) if os.access(p, os.X_OK)), None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail("chromium is missing but can be installed here: run ./scripts/setup (Debian package chromium)")
    pytest.skip("no chromium, and no way to install it on this machine (scripts/setup needs root and apt-get)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)  # a fresh profile each launch
        yield launched
        launched.close()


class Loaded:
    """A report opened from file:// with the network off, everything it asked for and complained about recorded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.context = browser.new_context(offline=True, viewport={"width": 1440, "height": 1000})
        self.page = self.context.new_page()
        self.url = path.resolve().as_uri()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=15_000)

    @classmethod
    def written(cls, browser: Any, path: Path, data: Path, episode: str, audit: AuditResult) -> Loaded:
        """The report of `episode` with `audit`, written to `path` and opened."""
        with LmdbLog(data) as log:
            path.write_text(episode_report(log, episode, audit))
        return cls(browser, path)

    def memory(self) -> dict[str, str]:
        return self.page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#memory .file:not(.deleted)')].map(
            f => [f.dataset.file, [...f.querySelectorAll('.ln:not(.del) > span:last-child')].map(s => s.textContent).join('\\n')]))""")

    def select(self, step: int) -> None:
        self.page.click(f"#timeline .row[data-step='{step}']")
        assert self.page.inner_text("#memory h2").lower() == f"memory after step {step}"

    def close(self) -> None:
        self.context.close()


def expected_memory(data: Path, episode: str, step: int) -> dict[str, str]:
    with LmdbLog(data) as log:
        files = memory_after_step(log, SnapshotStore(log), episode, step).contents()
    return {name: "\n".join(content.splitlines()) for name, content in files.items()}


def test_the_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    data, episode = record(tmp_path, steps=40)
    doc = gather(events_of(data, episode))
    changed = [s["step"] for s in doc["steps"] if s["step"] > 0 and s["changed"]]
    chain_step = changed[len(changed) // 2]
    audit = AuditResult(
        episode=episode, failure=Failure(39, "named", "named by the test"),
        first_mistake=Mistake(chain_step, "log", 0, "append", "map_notes.txt", "tree 2 west", "contradicted", "no tree there"),
        chain=[Link(chain_step, "log", 0, "write", "APPEND map_notes.txt|tree 2 west", "map_notes.txt", "0123456789abcdef"),
               Link(20, "plan", 0, "read", "SEARCH map_notes.txt|tree", "map_notes.txt"),
               Link(39, "", 0, "failure", "named by the test")],
        reason="a test audit")
    report = Loaded.written(browser, tmp_path / "ep.html", data, episode, audit)
    page = report.page
    try:
        assert report.errors == []
        assert report.requests == [report.url]  # nothing but the file itself
        box = page.locator("#timeline").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100
        assert page.locator("#timeline .row").count() == len(doc["steps"]) == 40
        assert page.locator("#plot svg path").count() >= 2  # progression and cumulative reward
        # opens at the first mistake; a click on a step shows its memory, changes highlighted
        assert page.get_attribute("#timeline .row.sel", "data-step") == str(chain_step)
        step = changed[-1]
        report.select(step)
        assert page.get_attribute("#timeline .row.sel", "data-step") == str(step)
        assert report.memory() == expected_memory(data, episode, step)
        assert page.locator("#memory .file.changed, #memory .file.new").count() == len(doc["steps"][step]["changed"])
        assert page.locator("#memory .ln.add").count() >= 1
        assert doc["steps"][step]["action"] in page.inner_text("#step .stephead")
        assert page.locator("#step .call").count() == len(doc["steps"][step]["calls"])
        for k in (0, 1, 2):
            report.select(k)
            assert report.memory() == expected_memory(data, episode, k)
        # the audit's chain links select their step
        page.click("#audit ol.chain li:nth-child(2) a")
        assert page.get_attribute("#timeline .row.sel", "data-step") == "20"
        page.click("#audit ol.chain li:nth-child(1) a")
        assert page.get_attribute("#timeline .row.sel", "data-step") == str(chain_step)
        assert page.locator("#memory .file.flash").get_attribute("data-file") == "map_notes.txt"
        page.locator("#timeline").focus()
        page.keyboard.press("ArrowDown")
        assert page.get_attribute("#timeline .row.sel", "data-step") == str(chain_step + 1)
        page.keyboard.press("k")
        page.keyboard.press("k")
        assert page.get_attribute("#timeline .row.sel", "data-step") == str(chain_step - 1)
        shot = tmp_path / "report.png"
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
        print(f"screenshot: {shot}")
        assert report.errors == [] and report.requests == [report.url]
    finally:
        report.close()


def test_hostile_text_does_not_run_in_chromium(browser: Any, tmp_path: Path) -> None:
    responses = tmp_path / "r.jsonl"
    texts = [f"{HOSTILE}<|ACTION|>Noop<|END|>"]
    for k in range(1, 6):
        texts += [f"<|APPEND|>strategy.txt|🌲 {k} {HOSTILE}<|END|><|DONE|>", "<script>window.__pwned=2</script><|ACTION|>Do<|END|>"]
    responses.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    data, episode = record(tmp_path, steps=6, policy=f"file:{responses}", structure="v0-small")
    audit = AuditResult(episode=episode, failure=None, first_mistake=None,
                        chain=[Link(2, "log", 0, "write", HOSTILE, "strategy.txt")], reason=HOSTILE)
    report = Loaded.written(browser, tmp_path / "ep.html", data, episode, audit)
    page = report.page
    try:
        for step in range(6):
            report.select(step)
            assert report.memory() == expected_memory(data, episode, step)  # non-BMP text too
            assert page.evaluate("() => window.__pwned") is None
        assert page.locator("img, iframe, object, embed").count() == 0
        assert HOSTILE in page.inner_text("#step") and HOSTILE in page.inner_text("#audit")
        assert "🌲 5" in page.inner_text("#memory")
        assert report.errors == [] and report.requests == [report.url]
    finally:
        report.close()
