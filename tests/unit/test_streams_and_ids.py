"""Stream ids parse back to what built them; rollout ids keep their formats."""

from __future__ import annotations

import re

import pytest

from automem.schemas import ids
from automem.schemas.streams import episode_of, episode_stream, request_of, rollout_stream, score_stream


def test_parsers_invert_builders() -> None:
    for episode in ("crafter-s0-0a1b2c3d", "a/b", "x-fork3-1"):
        assert episode_of(episode_stream(episode)) == episode
    assert request_of(rollout_stream("crafter-s1-abc-r0")) == "crafter-s1-abc-r0"


@pytest.mark.parametrize("stream", ["rollout/x", "ep/", "ep", score_stream("e")])
def test_episode_of_refuses_other_streams(stream: str) -> None:
    with pytest.raises(ValueError):
        episode_of(stream)


def test_id_formats() -> None:
    assert re.fullmatch(r"crafter-s7-[0-9a-f]{8}", ids.new_episode_id("crafter", 7))
    assert re.fullmatch(r"minihack-s0-[0-9a-f]{8}", ids.new_request_id("minihack", 0))
    digest = ids.request_digest(b"[]")
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert ids.derived_request_id("crafter", 3, digest, 2) == f"crafter-s3-{digest}-r2"
    assert ids.attempt_episode_id("crafter-s3-x-r2", 1) == "crafter-s3-x-r2-a1"
