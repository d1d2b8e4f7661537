"""`automem loop report`: one real loop-1 iteration in a store, then its page: the rows, the
curves as inline SVG, nothing fetched, the best and worst held-out episodes' reports beside
it, the same bytes twice, and one line with exit 2 for a store without a loop or a bad --id."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from automem.engine.log import LmdbLog
from automem.engine.loop import Row
from automem.engine.loop.report import _heldout, chart

from ..support.loop import LOOP, _args, _reviewer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one finished iteration of loop 1 (random policy, 3 episodes per seed set)."""
    root = tmp_path_factory.mktemp("loop")
    data = root / "d"
    run = subprocess.run([*LOOP, *_args(data, _reviewer(root / "reviewer.jsonl"), "--max-steps", "10", "--id", "r")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return data


def _report(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOOP, "report", "--data", str(data), "-o", str(out), *extra], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_the_page_shows_the_loop_and_links_its_best_and_worst_episodes(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "loop.html"
    proc = _report(store, out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["loop"] == "r" and doc["path"] == str(out) and doc["bytes"] == out.stat().st_size
    assert len(doc["episodes"]) == 2  # three held-out episodes: the best and the worst differ
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "automem loop <span class=\"id\">r</span>" in page
    assert re.search(r"<td class=\"v\">1</td><td class=\"v\">finished</td>", page)
    assert "v0-small" in page and "policy" in page  # the structure in the table, the settings
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    links = re.findall(r'href="(loop-episodes/[^"]+\.html)"', page)
    assert [Path(link).stem for link in links] == doc["episodes"]
    for link in links:
        episode = (tmp_path / link).read_text()
        assert episode.startswith("<!doctype html>") and Path(link).stem in episode
    again = tmp_path / "again"
    again.mkdir()
    assert _report(store, again / "loop.html").returncode == 0
    assert (again / "loop.html").read_bytes() == out.read_bytes()
    for link in links:
        assert (again / link).read_bytes() == (tmp_path / link).read_bytes()


@pytest.mark.slow
def test_no_loop_an_unknown_id_or_a_missing_folder_exit_2_with_one_line(store: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    with LmdbLog(empty):
        pass  # a store, with no loop in it
    for data, out, extra, says in ((empty, tmp_path / "a.html", (), "no loop in this store"),
                                   (store, tmp_path / "b.html", ("--id", "nope"), "no loop 'nope'"),
                                   (store, tmp_path / "missing" / "c.html", (), "does not exist")):
        proc = _report(data, out, *extra)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr and "Traceback" not in proc.stderr
        assert not out.exists()


def test_the_baseline_is_iteration_0_of_the_heldout_curve_when_recorded() -> None:
    heldout = {"heldout.mean_progression": 0.2, "heldout.low": 0.1, "heldout.high": 0.3}
    row = Row(iteration=1, heldout=heldout)
    assert [p.x for p in _heldout([row])[0].points] == [1]  # a loop recorded before the baseline stage
    assert [p.x for p in _heldout([Row(iteration=1, heldout=heldout, baseline=heldout)])[0].points] == [0, 1]
    assert "<svg" in chart("c", _heldout([Row(iteration=1, heldout=heldout, baseline=heldout)]), "y")
