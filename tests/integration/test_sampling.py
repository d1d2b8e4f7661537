"""Sampling: seeded per call from the episode seed and the call's place, so a sampled
episode on `local` reproduces byte for byte; temperature 0 is greedy; bad values exit 2."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest
import torch

from automem.engine.episodes.replay import replay
from automem.engine.log import LmdbLog
from automem.engine.policy.local import LocalPolicy, next_token
from automem.engine.policy.sampling import Sampling, call_seed, check_sampling
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.schemas.errors import UserError
from automem.schemas.events import EpisodeStarted, LLMCalled

from ..support.cli import assert_user_error, automem
from ..support.policies import chat


def test_call_seeds_follow_the_place_of_the_call() -> None:
    place = (7, 3, "log", 1, "agent")
    assert call_seed(*place) == call_seed(*place) and 0 <= call_seed(*place) < 2**63
    others = [(8, 3, "log", 1, "agent"), (7, 4, "log", 1, "agent"), (7, 3, "plan", 1, "agent"),
              (7, 3, "log", 2, "agent"), (7, 3, "log", 1, "memory")]
    assert len({call_seed(*place), *(call_seed(*o) for o in others)}) == 6


@pytest.mark.parametrize(("temperature", "top_p"), [(-0.1, None), (2.01, None), (math.nan, None), (None, 0.0),
                                                    (None, 1.5), (None, -1.0), (1.0, math.nan)])
def test_out_of_range_sampling_is_a_user_error(temperature: float | None, top_p: float | None) -> None:
    with pytest.raises(UserError, match="out of range"):
        check_sampling(temperature, top_p)


@pytest.mark.slow
def test_cli_refuses_bad_sampling_in_one_line(tmp_path: Path) -> None:
    for args in (["--temperature", "-1"], ["--temperature", "2.5"], ["--top-p", "0"], ["--top-p", "1.01"]):
        for command in (["run", "--env", "crafter", "--policy", "random"], ["submit", "--env", "crafter"]):
            assert_user_error(automem(*command, *args, "--data", str(tmp_path / "d"), cwd=tmp_path), "out of range")
    assert not (tmp_path / "d").exists()


def test_nucleus_keeps_the_smallest_set_reaching_top_p() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    draws = {next_token(logits, 1.0, 0.7, torch.Generator().manual_seed(s)) for s in range(200)}
    assert draws == {0, 1}  # 0.5 < 0.7 <= 0.8: tokens 0 and 1
    assert {next_token(logits, 1.0, 0.01, torch.Generator().manual_seed(s)) for s in range(50)} == {0}
    assert next_token(logits, 0.0, 1.0, None) == 0


@pytest.mark.slow
def test_local_sampling_is_seeded_by_the_request(local_policy: LocalPolicy) -> None:
    base = chat("Step 1: a tree is north of you. Record it.", max_tokens=12)
    sampled = [msgspec.structs.replace(base, temperature=1.0, seed=s) for s in (1, 1, 2, 3)]
    texts = [local_policy.complete(r).text for r in sampled]
    assert texts[0] == texts[1] and len(set(texts[1:])) > 1
    assert local_policy.complete(msgspec.structs.replace(base, temperature=0.0, seed=5)).text \
        == local_policy.complete(base).text


def _episode(data: Path, seed: int, sampling: Sampling | None = None) -> list[bytes]:
    """The episode's events, minus what names the run rather than the episode (id, latency)."""
    extra = {} if sampling is None else {"sampling": sampling}
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=3, seed=seed, policy="local",
                               data=str(data), **extra))
    with LmdbLog(data, create=False) as log:
        assert replay(log, summary.id).divergence is None
        out = []
        for rec in log.read_stream(f"ep/{summary.id}"):
            event = rec.event
            if isinstance(event, EpisodeStarted):
                event = msgspec.structs.replace(event, episode="EP")
            if isinstance(event, LLMCalled):
                event = msgspec.structs.replace(event, latency_ms=0.0)
            out.append(msgspec.msgpack.encode(event))
    return out


@pytest.mark.slow
def test_sampled_local_episodes_reproduce(tmp_path: Path, local_policy: LocalPolicy) -> None:
    hot = Sampling(1.0, 1.0)
    first = _episode(tmp_path / "a", 0, hot)
    assert first == _episode(tmp_path / "b", 0, hot)
    start = msgspec.msgpack.decode(first[0], type=EpisodeStarted)
    assert (start.temperature, start.top_p) == (1.0, 1.0)
    other = _episode(tmp_path / "c", 1, hot)
    assert first != other
    greedy = _episode(tmp_path / "d", 0)
    assert greedy == _episode(tmp_path / "e", 0, Sampling(0.0, 1.0))
    assert greedy != first
