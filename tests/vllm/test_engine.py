"""`--policy vllm:PATH` and `--memory-policy model:NAME` on the real vLLM engine (its CPU build):
greedy answers equal transformers' token for token, seeded sampling reproduces per request, a
final assistant message is continued, the adapter is on for the memory role only (one engine,
one batch), episodes in flight are batched together and replay exactly; bad input is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import msgspec
import pytest

from automem.engine.episodes.replay import replay
from automem.engine.log import LmdbLog
from automem.engine.models.load import make_policies
from automem.engine.models.registry import resolve, verified_adapter
from automem.engine.policy.base import Policy, PolicyRequest
from automem.engine.policy.local import LocalPolicy
from automem.engine.policy.vllm_backend import VLLMPolicy
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import play
from automem.schemas.events import EpisodeStarted, LLMCalled

from ..support.policies import chat
from ..support.training import conversation
from .conftest import ENABLE

pytest.importorskip("vllm", reason=ENABLE)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def roles(trained: tuple[Path, str], converted_model: Path) -> Iterator[tuple[Policy, Policy]]:
    """(agent, memory): one vLLM engine over the converted model, the version's adapter a
    LoRARequest on the memory role's calls only."""
    data, name = trained
    with LmdbLog(data, create=False) as log:
        agent, memory = make_policies(f"vllm:{converted_model}", f"model:{name}", log, data)
    assert isinstance(memory, VLLMPolicy)
    yield agent, memory
    memory.close()


@pytest.fixture(scope="module")
def tuned(trained: tuple[Path, str], converted_model: Path) -> LocalPolicy:
    """The same version in transformers: the reference for the memory role's answers."""
    data, name = trained
    with LmdbLog(data, create=False) as log:
        adapter = verified_adapter(data, resolve(log, name))
    return LocalPolicy(converted_model, f"model:{name}", adapter)


def trained_prompt(i: int = 0, max_tokens: int = 24) -> PolicyRequest:
    """A prompt of the version's training set: the system turn and the user turn."""
    return PolicyRequest(messages=tuple(conversation(i)[:2]), max_tokens=max_tokens)  # type: ignore[arg-type]


PROMPTS = (chat("You see a tree to the north. What do you write?", max_tokens=24), trained_prompt())


def test_the_roles_share_one_engine_and_name_themselves_apart(roles: tuple[Policy, Policy], trained: tuple[Path, str],
                                                              converted_model: Path) -> None:
    agent, memory = roles
    assert agent.batch_key == memory.batch_key
    assert (agent.name, memory.name) == (f"vllm:{converted_model}", f"model:{trained[1]}")


def test_greedy_answers_equal_transformers_token_for_token(roles: tuple[Policy, Policy], local_policy: LocalPolicy,
                                                           tuned: LocalPolicy) -> None:
    agent, memory = roles
    for request in PROMPTS:
        assert agent.complete(request).text == local_policy.complete(request).text
        assert memory.complete(request).text == tuned.complete(request).text
    # the adapter is really applied: on a prompt it was trained on, the roles answer differently
    assert memory.complete(trained_prompt()).text != agent.complete(trained_prompt()).text


def test_a_final_assistant_message_is_continued(roles: tuple[Policy, Policy], local_policy: LocalPolicy) -> None:
    agent, _ = roles
    request = chat("Go north and look around.", "<|ACTION|>", max_tokens=12)
    assert agent.complete(request).text == local_policy.complete(request).text


def test_seeded_sampling_reproduces_per_request_alone_or_batched(roles: tuple[Policy, Policy]) -> None:
    agent, memory = roles
    sampled = [msgspec.structs.replace(PROMPTS[0], temperature=1.0, top_p=0.95, seed=seed) for seed in (1, 2, 3)]
    alone = [agent.complete(r).text for r in sampled]
    assert [agent.complete(r).text for r in sampled] == alone
    batched = agent.complete_batch([(memory, sampled[1]), (agent, sampled[0]), (agent, sampled[2])])
    assert [batched[1].text, batched[2].text] == [alone[0], alone[2]]  # type: ignore[union-attr]
    assert len(set(alone)) > 1  # the seed is used: three seeds, not one answer


def test_the_adapter_is_on_for_the_memory_role_only_within_one_batch(roles: tuple[Policy, Policy]) -> None:
    agent, memory = roles
    request = trained_prompt()
    alone = {"agent": agent.complete(request).text, "memory": memory.complete(request).text}
    mixed = agent.complete_batch([(memory, request), (agent, request), (memory, request), (agent, request)])
    assert [a.text for a in mixed] == [alone["memory"], alone["agent"]] * 2  # type: ignore[union-attr]


def test_two_model_episodes_in_flight_are_batched_and_replay(roles: tuple[Policy, Policy], trained: tuple[Path, str],
                                                             converted_model: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    agent, memory = roles
    data, name = trained
    llm: Any = memory._llm  # type: ignore[attr-defined]
    sizes: list[int] = []
    chat_ = llm.chat

    def counted(messages: list, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(messages))
        return chat_(messages, *args, **kwargs)

    monkeypatch.setattr(llm, "chat", counted)
    req = RunRequest(env="crafter", task=None, episodes=2, max_steps=2, seed=5, policy=f"vllm:{converted_model}",
                     memory_policy=f"model:{name}", structure="v0-small", concurrency=2, data=str(data))
    with LmdbLog(data) as log:
        rows = play(log, req, agent, memory, range(2))
        for row in rows:
            events = [r.event for r in log.read_stream(f"ep/{row.id}")]
            assert isinstance(events[0], EpisodeStarted)
            assert events[0].models == {"agent": f"vllm:{converted_model}", "memory": f"model:{name}"}
            calls = [e for e in events if isinstance(e, LLMCalled)]
            assert {c.role for c in calls} == {"agent", "memory"} and not [c.error for c in calls if c.error]
            assert replay(log, row.id).divergence is None
    assert max(sizes) == 2  # both episodes' calls went to the engine together


def test_a_folder_vllm_cannot_load_is_exit_2_and_one_line_and_stdout_stays_clean(tmp_path: Path) -> None:
    """vLLM logs to stdout by default: under `--json` the backend sends its logs to stderr."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["NoSuchModel"], "model_type": "nosuch"}')
    proc = subprocess.run([sys.executable, "-c", "from automem.engine.cli import main; main()", "run", "--env",
                           "crafter", "--max-steps", "1", "--policy", f"vllm:{folder}", "--data", str(tmp_path / "d"),
                           "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "vLLM cannot load" in last and str(folder) in last
    assert proc.stdout == ""
