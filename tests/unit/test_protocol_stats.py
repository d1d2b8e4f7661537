"""BALROG's figures computed as BALROG computes them, checked on its own published numbers."""

from __future__ import annotations

import pytest

from automem.engine.policy.sampling import Sampling
from automem.engine.protocol.balrog import departures, overall, parse_envs, per_env, plan, published_average, stats
from automem.engine.protocol.published import ROWS, matching
from automem.schemas.agent import agent_spec
from automem.schemas.errors import UserError


def test_env_figure_is_the_population_standard_error() -> None:
    # Llama-3.2-1B's MiniHack on the leaderboard: 2 of 40 episodes solved, 5.00 ± 3.45
    mean, error = stats([1.0] * 2 + [0.0] * 38)
    assert (round(mean, 2), round(error, 2)) == (5.0, 3.45)
    assert stats([0.3]) == pytest.approx((30.0, 0.0)) and stats([]) == (0.0, 0.0)


def test_overall_is_the_mean_of_env_means_with_errors_combined() -> None:
    # Llama-3.2-1B's six leaderboard envs give its overall 6.65 ± 1.04
    envs = [(12.73, 1.91), (5.0, 3.45), (0.0, 0.0), (8.0, 3.84), (10.83, 2.84), (3.33, 0.91)]
    mean, error = overall(envs)
    assert (round(mean, 2), round(error, 2)) == (6.65, 1.04)


def test_published_rows_match_by_model_name_and_carry_their_source() -> None:
    [row] = matching("meta-llama/Llama-3.2-1B-Instruct")
    assert row.envs["crafter"] == (12.73, 1.91) and row.source == "balrog-leaderboard"
    assert len(matching("Qwen/qwen2.5-32b-instruct")) == 4 and matching("smollm2-135m-instruct") == []
    frontier = matching("claude-opus-4.5")[0]
    assert frontier.envs["minihack"] == (27.5, None) and frontier.source == "automem-paper-reported"
    paper = [r for r in ROWS if r.source == "automem-paper"]
    assert published_average(paper[0], ["crafter"]).error is None  # the paper gives no errors
    assert published_average(row, ["crafter", "minihack"]).value == pytest.approx(8.87, abs=0.01)
    assert published_average(paper[0], ["crafter", "nethack"]) is None


def test_every_difference_from_balrog_is_a_departure() -> None:
    none = departures(plan(["crafter"], {}, {}), agent_spec("history", 16, "balrog"), 0, Sampling(1.0, 1.0))
    assert len(none) == 3 and "seeds fixed: 0..9" in none[0]  # seeds, answer cap, the reset's no-op step
    text = "\n".join(departures(plan(["crafter", "nethack"], {}, {}), agent_spec("history", 16, "balrog"), 0,
                                Sampling(1.0, 1.0)))
    assert "nethack: BALROG's text, but" in text and "annotate, call, overview, teleport, minus, apos, 0," in text
    every = ["crafter", "minihack", "nethack"]
    many = departures(plan(every, dict.fromkeys(every, 2), dict.fromkeys(every, 50)), agent_spec("memory"), 7,
                      Sampling())
    text = "\n".join(many)
    for needle in ("seeds fixed: 7..8", "memory agent", "greedy", "crafter: 2 episodes", "crafter: at most 50 steps",
                   "minihack: at most 50", "nethack: at most 50", "automem's observation text", "stand in for Boxoban"):
        assert needle in text


def test_a_reduced_protocol_is_stated_per_env() -> None:
    envs = ["crafter", "minihack"]
    chosen = plan(envs, per_env("crafter=3", envs, "--episodes", 100), per_env("minihack=100", envs, "--max-steps", 10**7))
    assert [(p.env, p.episodes, p.max_steps) for p in chosen] == [("crafter", 3, 2000), ("minihack", 5, 100)]
    assert departures(chosen, agent_spec("history"), 0, Sampling(1.0, 1.0))[2] == (
        "crafter: 3 episodes per task (BALROG: 10)")  # BALROG's own step limits: no departure
    with pytest.raises(UserError, match=r"above BALROG's step limit: minihack=101 \(BALROG: 100\)"):
        plan(envs, {}, per_env("101", envs, "--max-steps", 10**7))
    for bad in ("0", "x", "nethack=2", "crafter=2,minihack"):
        with pytest.raises(UserError, match="--episodes"):
            per_env(bad, envs, "--episodes", 100)


def test_envs_are_checked() -> None:
    assert parse_envs("nethack, crafter") == ["crafter", "nethack"]
    with pytest.raises(UserError, match="--envs 'babyai'"):
        parse_envs("babyai")
