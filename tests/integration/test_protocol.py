"""`automem balrog`: the protocol's episodes, its figures, reuse, resumption, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from automem.engine.log import LmdbLog
from automem.engine.protocol import balrog
from automem.engine.rollout.players import Local
from automem.schemas.agent import agent_spec
from tests.support.cli import assert_user_error, automem


def test_the_protocol_plays_each_task_on_fixed_seeds_and_reuses_what_is_stored(tmp_path: Path) -> None:
    data = tmp_path / "d"
    args = ("balrog", "--policy", "random", "--envs", "crafter,minihack", "--episodes", "2", "--max-steps",
            "crafter=3,minihack=3",
            "--seed", "4", "--data", str(data), "--json", "--published", "--html", str(tmp_path / "b.html"))
    first = automem(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    crafter, minihack = result["envs"]
    assert crafter["episodes"] == 2 and minihack["episodes"] == 16 and len(minihack["tasks"]) == 8
    assert all(t["seeds"] == [4, 5] and t["reused"] == 0 for t in crafter["tasks"] + minihack["tasks"])
    assert result["agent"] == "history-16" and result["published"] and "balrog-leaderboard" in result["sources"]
    assert any("at most 3 steps" in d for d in result["departures"])
    page = (tmp_path / "b.html").read_text()
    assert page.count("<svg") == 3 and "Departures" in page  # crafter, minihack, the average
    assert not any(tag in page for tag in ("src=", "<link", "<script", "@import"))  # nothing loaded from anywhere
    again = json.loads(automem(*args, cwd=tmp_path).stdout)  # nothing played twice
    assert all(t["reused"] == 2 for e in again["envs"] for t in e["tasks"])
    for e in again["envs"] + result["envs"]:
        for t in e["tasks"]:
            del t["reused"]
    assert again["envs"] == result["envs"]  # the same episodes, the same figures


def test_agents_are_kept_apart_when_episodes_are_reused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with LmdbLog(data) as log:
        small = balrog.plan(["crafter"], {"crafter": 1}, {"crafter": 2})
        history = balrog.run(log, data, Local(), "random", agent_spec("history", 2), small)
        none = balrog.run(log, data, Local(), "random", agent_spec("none"), small)
        memory = balrog.run(log, data, Local(), "random", agent_spec("memory"), small)
    episodes = {r.envs[0].tasks[0].episodes[0] for r in (history, none, memory)}
    assert len(episodes) == 3 and memory.agent == "memory"


def test_a_policy_that_fails_midway_keeps_what_was_done_and_resumes(tmp_path: Path) -> None:
    answers = tmp_path / "a.jsonl"
    answers.write_text(json.dumps({"text": "Do"}) + "\n" * 1 + json.dumps({"text": "Noop"}) + "\n")
    args = ("balrog", "--policy", f"file:{answers}", "--envs", "crafter", "--episodes", "3", "--max-steps", "1",
            "--data", str(tmp_path / "d"), "--json")
    failed = automem(*args, cwd=tmp_path)  # the step bar was drawn; the error is the last line
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert "did not finish (model_error" in last and "run the same command again" in last
    answers.write_text(answers.read_text() + json.dumps({"text": "Sleep"}) + "\n")
    resumed = automem(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    [task] = json.loads(resumed.stdout)["envs"][0]["tasks"]
    assert task["reused"] == 2 and task["progression"] == [0.0, 0.0, 0.0]


def test_bad_protocol_input_is_one_line(tmp_path: Path) -> None:
    base = ("balrog", "--policy", "random", "--data", str(tmp_path / "d"))
    assert_user_error(automem(*base, "--envs", "babyai", cwd=tmp_path), "--envs 'babyai'")
    assert_user_error(automem(*base, "--envs", "crafter", "--episodes", "nethack=2", cwd=tmp_path),
                      "--episodes 'nethack=2'")
    assert_user_error(automem(*base, "--max-steps", "0", cwd=tmp_path), "--max-steps '0'")
    assert_user_error(automem(*base, "--agent", "planner", cwd=tmp_path), "unknown agent 'planner'")
    assert_user_error(automem(*base, "--history", "999", cwd=tmp_path), "--history must be 1 to 256")
    assert_user_error(automem(*base, "--envs", "crafter", "--max-steps", "3000", cwd=tmp_path),
                      "above BALROG's step limit: crafter=3000")
    assert_user_error(automem(*base, "--html", str(tmp_path / "no" / "b.html"), cwd=tmp_path), "its folder does not exist")
    assert not (tmp_path / "d").exists()


def test_balrog_text_is_played_in_every_game(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with LmdbLog(data) as log:
        chosen = balrog.plan(["crafter", "minihack"], {"crafter": 1, "minihack": 1}, {"crafter": 2, "minihack": 2})
        result = balrog.run(log, data, Local(), "random", agent_spec("history", 2, "balrog"), chosen)
        agents = {e.env: {next(iter(log.read_stream(f"ep/{ep}"))).event.agent.observation
                          for t in e.tasks for ep in t.episodes} for e in result.envs}
    assert agents == {"crafter": {"balrog"}, "minihack": {"balrog"}} and result.agent == "history-2:balrog"
    assert any(d.startswith("minihack: BALROG's text, but a --More-- page") for d in result.departures)
