"""The baseline agents: BALROG's naive agent (`history`) and the bare observation (`none`),
recorded in EpisodeStarted, replayed exactly, their context as BALROG builds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automem.engine.agent import instructions
from automem.engine.episodes.read import read_episode
from automem.engine.episodes.replay import replay
from automem.engine.log import LmdbLog
from automem.engine.policy.base import PolicyRequest
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.agent import AgentSpec, agent_spec
from automem.schemas.errors import UserError
from automem.schemas.events import LLMCalled, StepTaken
from tests.support.cli import assert_user_error, automem


def play(tmp_path: Path, agent: AgentSpec, policy: str = "random", steps: int = 6, env: str = "crafter",
         episodes: int = 1, concurrency: int = 1) -> tuple[Path, list]:
    data = tmp_path / "d"
    rows = run(RunRequest(env=env, task=None, episodes=episodes, max_steps=steps, seed=3, policy=policy,
                          data=str(data), agent=agent, concurrency=concurrency))
    return data, rows


def requests_of(data: Path, episode: str) -> list[PolicyRequest]:
    """Every request the agent sent, rebuilt by replay (which also verifies the episode)."""
    seen: list[PolicyRequest] = []
    with LmdbLog(data) as log:
        result = replay(log, episode, observe=lambda _call, request: seen.append(request))
    assert result.divergence is None and result.ended
    return seen


@pytest.mark.parametrize("agent", [agent_spec("history", 2), agent_spec("none"), agent_spec("history", 3, "balrog")])
def test_a_baseline_episode_is_recorded_and_replays(tmp_path: Path, agent: AgentSpec) -> None:
    data, [row] = play(tmp_path, agent)
    assert row.memory_ops is None and row.agent == agent.label() and row.steps == 6
    with LmdbLog(data) as log:
        record = read_episode(log, row.id)
    assert record.start.agent == agent
    calls = [e for e in record.events if isinstance(e, LLMCalled)]
    assert [c.phase for c in calls] == ["act"] * 6  # one call per step, no LOG or PLAN
    assert len(requests_of(data, row.id)) == 6


def test_history_context_is_balrogs(tmp_path: Path) -> None:
    data, [row] = play(tmp_path, agent_spec("history", 2, "balrog"), steps=5)
    requests = requests_of(data, row.id)
    first, last = requests[0].messages, requests[-1].messages
    assert first[0] == {"role": "user", "content": instructions.instruction("crafter", "default")}
    assert len(first) == 2 and first[1]["content"].startswith("Current Observation:\nYour status:\n- health: 9/9")
    # a window of 2N events: answer, observation, answer, then the current observation
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[2]["content"].startswith("Observation:\nYou see:") and "Your status" not in last[2]["content"]
    assert last[-1]["content"].endswith("\n\n" + instructions.NAIVE)
    with LmdbLog(data) as log:
        steps = read_episode(log, row.id).steps
    assert last[1]["content"] == steps[-3].raw_action and last[3]["content"] == steps[-2].raw_action
    assert all(s.valid for s in steps)  # the random policy names actions exactly


def test_history_context_is_balrogs_in_the_nle_games(tmp_path: Path) -> None:
    data, [row] = play(tmp_path, agent_spec("history", 2, "balrog"), steps=4, env="minihack")
    last = requests_of(data, row.id)[-1].messages
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    # a past observation is the long-term context alone; the inventory comes with the current one only
    assert last[2]["content"].startswith("Observation:\nmessage:\n") and "\nmap:\n" in last[2]["content"]
    assert "inventory:" not in last[2]["content"]
    assert last[-1]["content"].startswith("Current Observation:\ninventory:\n")
    assert "\n\nlanguage observation:\n" in last[-1]["content"]


def test_none_sees_the_current_observation_only(tmp_path: Path) -> None:
    data, [row] = play(tmp_path, agent_spec("none"), steps=3)
    for request in requests_of(data, row.id):
        assert [m["role"] for m in request.messages] == ["user", "user"]


def test_an_invalid_answer_runs_balrogs_default_and_is_fed_back(tmp_path: Path) -> None:
    answers = tmp_path / "a.jsonl"  # BALROG matches exactly: lower case is invalid; digits are dropped first
    answers.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["move west", " Do2 \n", "Sleep please"]))
    data, [row] = play(tmp_path, agent_spec("history", 16), policy=f"file:{answers}", steps=3)
    with LmdbLog(data) as log:
        steps = [e for e in read_episode(log, row.id).events if isinstance(e, StepTaken)]
    assert [(s.raw_action, s.action, s.valid) for s in steps] == [
        ("move west", "Noop", False), ("Do", "Do", True), ("Sleep please", "Noop", False)]
    requests = requests_of(data, row.id)
    notice = "Your previous output did not contain a valid action. Defaulted to action: Noop"
    assert notice in requests[1].messages[-1]["content"] and notice not in requests[2].messages[-1]["content"]
    assert requests[1].messages[1]["content"].startswith("Observation:\n")


def test_minihack_answers_are_held_to_the_tasks_action_set(tmp_path: Path) -> None:
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["far east", "search"]))
    data, [row] = play(tmp_path, agent_spec("none"), policy=f"file:{answers}", steps=2, env="minihack")
    with LmdbLog(data) as log:  # corridor-r3 takes the 8 directions, open, kick, search: no "far"
        steps = read_episode(log, row.id).steps
    assert [(s.action, s.valid) for s in steps] == [("north", False), ("search", True)]
    assert "far east" not in requests_of(data, row.id)[0].valid_actions


def test_baselines_batch_like_memory_episodes(tmp_path: Path) -> None:
    data, rows = play(tmp_path, agent_spec("history", 4), episodes=3, concurrency=3)
    for row in rows:
        assert len(requests_of(data, row.id)) == 6


@pytest.mark.parametrize(("kind", "history", "observation", "needle"), [
    ("react", None, "automem", "unknown agent 'react'"),
    ("history", 0, "automem", "--history must be 1 to 256"),
    ("history", 257, "automem", "--history must be 1 to 256"),
    ("memory", 4, "automem", "--history is for --agent history"),
    ("none", None, "ascii", "unknown observation format 'ascii'"),
])
def test_bad_agent_settings_are_refused(kind: str, history: int | None, observation: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        agent_spec(kind, history, observation)


def test_the_cli_refuses_bad_agents_in_one_line(tmp_path: Path) -> None:
    base = ("run", "--data", str(tmp_path / "d"), "--policy", "random", "--max-steps", "1")
    assert_user_error(automem(*base, "--agent", "react", cwd=tmp_path), "unknown agent 'react'")
    assert_user_error(automem(*base, "--agent", "history", "--history", "0", cwd=tmp_path), "--history must be 1")
    assert_user_error(automem(*base, "--agent", "none", "--memory-policy", "random", cwd=tmp_path),
                      "--memory-policy is for the memory agent")
    assert not (tmp_path / "d").exists()


def test_memory_only_tools_say_not_applicable(tmp_path: Path) -> None:
    from automem.engine.audit import audit
    from automem.engine.scoring import score_episodes

    data, [row] = play(tmp_path, agent_spec("history", 2), steps=3)
    with LmdbLog(data) as log:
        with pytest.raises(UserError, match="keeps no memory"):
            audit(log, row.id)
        report = score_episodes(log, [row.id])
    assert report.episodes == 0 and report.skipped == {"played by an agent without memory": 1}
    shown = automem("show", row.id, "--data", str(data), cwd=tmp_path)
    assert shown.returncode == 0 and "act 0" in shown.stdout



@pytest.mark.slow
def test_the_history_agent_through_an_openai_compatible_server(tmp_path: Path, served_model: tuple[str, str]) -> None:
    """BALROG's naive agent against `transformers serve`: consecutive user turns (the instruction,
    then past observations whose answers were invalid) are a conversation servers accept."""
    model, url = served_model
    data, [row] = play(tmp_path, agent_spec("history", 2), policy=f"openai:{model}@{url}", steps=3)
    assert row.steps == 3 and row.cause == "max_steps", row
    with LmdbLog(data) as log:
        calls = read_episode(log, row.id).calls
    assert len(calls) == 3 and all(c.error is None and c.completion_tokens > 0 for c in calls), calls
    assert len(requests_of(data, row.id)[-1].messages) >= 3  # the instruction, the past, the current observation
