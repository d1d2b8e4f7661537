"""`vllm serve` (the CPU build), started once for this module with runtime LoRA loading on as
vLLM documents: `--policy openai:MODEL@URL` episodes, and `automem consume publisher` loading
versions into it as they are made and unloading the one a promotion replaced, each load and
unload checked against the adapters the server lists, each served adapter checked by its
answers against transformers with the same adapter."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from automem.bench.serve import ServerFailed, vllm_served
from automem.consumers.publisher import Publisher
from automem.consumers.runtime import position_key, run_consumer
from automem.engine.cli import main
from automem.engine.episodes.replay import replay
from automem.engine.log import LmdbLog, open_log
from automem.engine.models.registry import resolve
from automem.engine.policy.local import LocalPolicy
from automem.engine.policy.spec import make_policy
from automem.schemas.errors import UserError
from automem.schemas.events import LLMCalled, ModelVersionEvaluated

from ..support.broker import Broker
from ..support.loop import CLI, _reviewer, kafka_stores, service
from ..support.policies import promote, register_version
from .conftest import ENABLE
from .test_engine import trained_prompt

pytest.importorskip("vllm", reason=ENABLE)

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def server(converted_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        with vllm_served(converted_model, tmp_path_factory.mktemp("vllm") / "serve.log") as url:
            yield url
    except ServerFailed as exc:
        pytest.fail(str(exc))


def _run(data: Path, policy: str, *extra: str) -> list[LLMCalled]:
    """`automem run` in-process; the model calls of its one episode, checked to replay."""
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--data", str(data), "--env", "crafter", "--episodes", "1", "--max-steps", "2",
              "--structure", "v0-small", "--policy", policy, "--json", *extra])
    assert exit_.value.code == 0
    with LmdbLog(data, create=False) as log:
        [episode] = [s.removeprefix("ep/") for s in log.streams("ep")]
        assert replay(log, episode).divergence is None
        return [r.event for r in log.read_stream(f"ep/{episode}") if isinstance(r.event, LLMCalled)]


def test_openai_episodes_on_vllm_serve_replay_and_sampling_reproduces(server: str, converted_model: Path,
                                                                      tmp_path: Path) -> None:
    spec = f"openai:{converted_model}@{server}"
    greedy = _run(tmp_path / "greedy", spec)
    assert greedy and not [c.error for c in greedy if c.error]
    first, again = (_run(tmp_path / name, spec, "--temperature", "1.0", "--seed", "3") for name in ("a", "b"))
    assert [c.response for c in first] == [c.response for c in again]  # vLLM honours each request's seed


def test_the_publisher_serves_each_promoted_version_and_only_it(server: str, trained: tuple[Path, str],
                                                                random_adapter: Path, converted_model: Path,
                                                                tmp_path: Path) -> None:
    data, new = trained
    request = trained_prompt()
    base = make_policy(f"openai:{converted_model}@{server}").complete(request).text
    with LmdbLog(data) as log:
        old = register_version(log, data, random_adapter)
        assert resolve(log, new).adapter == f"models/{new}"  # where the publisher tells vLLM to look
        publisher = Publisher(server, str(data / "models"))
        with LmdbLog(tmp_path / "positions") as positions:
            promote(log, old)
            run_consumer(publisher, log, positions, until_idle=True)
            assert {old, new, str(converted_model)} == publisher.served()  # each version made, for evaluation
            before = make_policy(f"openai:{old}@{server}").complete(request).text
            assert before == LocalPolicy(converted_model, "old", random_adapter).complete(request).text != base
            promote(log, new, replaces=old)
            run_consumer(publisher, log, positions, until_idle=True)
            assert {new, str(converted_model)} == publisher.served()
        # a new name is never answered from the old one's cache: the same prompt, the new weights' answer
        answered = make_policy(f"openai:{new}@{server}").complete(request).text
        tuned = LocalPolicy(converted_model, "new", data / "models" / new).complete(request).text
        assert answered == tuned and tuned not in (base, before)
        with LmdbLog(tmp_path / "fresh") as fresh:  # no position: the whole history again, harmlessly
            run_consumer(Publisher(server, str(data / "models")), log, fresh, until_idle=True)
        assert {new, str(converted_model)} == publisher.served()


def test_an_adapter_the_server_refuses_stops_the_publisher_before_its_position_moves(
        server: str, tmp_path: Path) -> None:
    with LmdbLog(tmp_path / "d") as log:
        promote(log, "mem-000000000000")  # no such folder where the server looks
        publisher = Publisher(server, str(tmp_path / "models"), tries=1)
        with pytest.raises(UserError, match="refused load_lora_adapter") as raised:
            run_consumer(publisher, log, log, until_idle=True)
        assert "\n" not in str(raised.value)
        assert log.load_position(position_key(publisher, log)) == b""
        assert "mem-000000000000" not in publisher.served()



def test_the_whole_loop_on_kafka_with_vllm_serve_as_the_agents_server(
        server: str, converted_model: Path, broker: Broker, tmp_path: Path) -> None:
    """Toy size, once: driver, rollout worker, scorer, trainer and publisher as processes on a
    real broker, the agent (and the candidate, by its version name) answered by `vllm serve`."""
    bus = f"kafka://{broker.url}/v{uuid.uuid4().hex[:8]}"
    driver, trainer, env = kafka_stores(tmp_path)
    services = [service(args, env, tmp_path / f"{args[0]}-{args[1]}.log") for args in (
        ["worker", "--bus", bus, "--data", str(tmp_path / "worker"), "--concurrency", "2"],
        ["consume", "scorer", "--bus", bus, "--data", str(tmp_path / "scorer")],
        ["consume", "trainer", "--bus", bus, "--data", str(trainer)],
        ["consume", "publisher", "--bus", bus, "--data", str(tmp_path / "publisher"), "--vllm", server,
         "--adapter-root", str(trainer / "models")])]
    try:
        done = subprocess.run([*CLI, "loop", "run", "--bus", bus, "--data", str(driver), "--id", "served",
                               "--policy", f"openai:{converted_model}@{server}", "--structure", "v0-small",
                               "--reviewer", _reviewer(tmp_path / "reviewer.jsonl"), "--episodes", "2",
                               "--max-steps", "3", "--min-examples", "0", "--wait", "900", "--json"],
                              capture_output=True, text=True, timeout=2400, env=env)
        logs = "".join(f"\n--- {p.name}\n" + p.read_text()[-1500:] for p in sorted(tmp_path.glob("*.log")))
        assert done.returncode == 0, done.stderr[-3000:] + logs
    finally:
        for proc in services:
            proc.kill()
            proc.wait()
    [row] = json.loads(done.stdout)["iterations"]
    assert row["status"] == "finished" and row["candidate_model"].startswith("mem-")
    with open_log(bus) as log:
        evaluated = [r.event for s in log.streams("model") for r in log.read_stream(s)
                     if isinstance(r.event, ModelVersionEvaluated)]
        assert [e.name for e in evaluated] == [row["candidate_model"]]
        # the candidate's episodes were answered by the adapter vLLM served under its version name
        for episode in evaluated[0].episodes:
            calls = [r.event for r in log.read_stream(f"ep/{episode}") if isinstance(r.event, LLMCalled)]
            assert {c.model for c in calls if c.role == "memory"} == {f"openai:{row['candidate_model']}"}
            assert not [c.error for c in calls if c.error]
    assert row["candidate_model"] in Publisher(server, str(trainer / "models")).served()

