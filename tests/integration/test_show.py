"""`automem show`: an episode's trace per step, as data (exact) and as terminal text (escaped, shortened)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from automem.engine.agent.episode import Episode, EpisodeSpec
from automem.engine.envs import make_env
from automem.engine.log import LmdbLog
from automem.engine.policy.base import Completion, PolicyRequest
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import ENGINE_VERSION, run
from automem.engine.structure.registry import register_structure
from automem.engine.structure.seeds import CRAFTER_FILES, v0
from automem.engine.views.show import RESPONSE_CHARS, ShowResult, render, show_trace
from automem.schemas.errors import UserError
from automem.schemas.events import (
    LLMCalled,
    MemoryOpApplied,
    OutcomeObserved,
    StepTaken,
)

GAMES = [("crafter", None), ("nethack", None), ("minihack", "corridor-r3")]
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own styling: the only escape sequences allowed out


def record(data: Path, env: str, task: str | None, policy: str, steps: int, structure: str = "auto") -> str:
    [summary] = run(RunRequest(env=env, task=task, episodes=1, max_steps=steps, seed=7, policy=policy,
                               structure=structure, data=str(data)))
    return summary.id


def text_of(result: ShowResult, terminal: bool = False) -> str:
    buf = io.StringIO()
    render(result, Console(file=buf, force_terminal=terminal, color_system="truecolor" if terminal else None,
                           width=100))
    return buf.getvalue()


@pytest.fixture(scope="module")
def random_episodes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data = tmp_path_factory.mktemp("show") / "d"
    return data, {env: record(data, env, task, "random", 40) for env, task in GAMES}


@pytest.mark.slow
@pytest.mark.parametrize("env", [g[0] for g in GAMES])
def test_random_episode_trace_matches_its_log(random_episodes: tuple[Path, dict[str, str]], env: str) -> None:
    data, episodes = random_episodes
    with LmdbLog(data) as log:
        result = show_trace(log, episodes[env])
        events = [r.event for r in log.read_stream(f"ep/{episodes[env]}")]
    taken = [e for e in events if isinstance(e, StepTaken)]
    assert [s.step for s in result.steps] == [t.step for t in taken] == list(range(len(taken)))
    for s, t in zip(result.steps, taken):
        assert (s.raw_action, s.action, s.valid, s.reward, s.done) == (t.raw_action, t.action, t.valid, t.reward, t.done)
    assert [(c.step, c.phase, c.turn, c.response) for c in events if isinstance(c, LLMCalled)] == \
        [(s.step, c.phase, c.turn, c.response) for s in result.steps for c in s.calls]
    recorded_ops = [e for e in events if isinstance(e, MemoryOpApplied)]
    ops = [o for s in result.steps for o in s.ops]
    assert [(e.op.kind, e.op.path, e.op.args, e.ok) for e in recorded_ops] == [(o.op, o.file, o.args, o.ok) for o in ops]
    assert all(o.result is not None for o in ops)  # every result re-derived to its recorded digest
    assert [(e.step, e.kind, e.detail) for e in events if isinstance(e, OutcomeObserved)] == \
        [(s.step, o.kind, o.detail) for s in result.steps for o in s.outcomes]

    doc = json.loads(msgspec.json.encode(result))
    assert doc["episode"] == episodes[env] and len(doc["steps"]) == len(taken)
    assert set(doc["steps"][0]) >= {"step", "raw_action", "action", "valid", "reward", "calls", "ops", "outcomes"}
    assert set(doc["steps"][0]["calls"][0]) == {"phase", "turn", "role", "model", "response", "error", "score"}
    assert set(doc["steps"][0]["ops"][0]) == {"phase", "turn", "op", "file", "args", "ok", "result", "index", "score"}

    printed = text_of(result)
    assert "\x1b" not in printed  # piped: plain text
    assert printed.count("\nstep ") == len(taken) and f"step {len(taken) - 1}  " in printed
    assert "init 0" not in printed and "WRITE strategy.txt|" in printed  # seeded files shown as step 0's ops


def test_a_step_range_keeps_results_derived_from_the_whole_episode(random_episodes: tuple[Path, dict[str, str]]) -> None:
    data, episodes = random_episodes
    with LmdbLog(data) as log:
        whole = show_trace(log, episodes["crafter"])
        part = show_trace(log, episodes["crafter"], 10, 12)
        last = show_trace(log, episodes["crafter"], 39)
    assert [s.step for s in part.steps] == [10, 11, 12] and part.steps == whole.steps[10:13]
    assert [s.step for s in last.steps] == [39]
    assert "steps 10..12" in text_of(part)


class Scripted:
    """Answers from a list and keeps every request: what the model was shown."""

    name = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.requests = list(answers), []

    def for_episode(self, seed: int) -> Scripted:
        return self

    def complete(self, request: PolicyRequest) -> Completion:
        self.requests.append(request)
        return Completion(text=self.answers.pop(0), model=self.name)


@pytest.mark.slow
def test_op_results_are_what_the_model_was_shown(log: LmdbLog) -> None:
    structure = v0("crafter")
    policy = Scripted([
        "<|READ|>map_notes.txt<|END|><|LIST|><|END|><|READ|>missing.txt<|END|>",  # step 0 plan 0
        "<|ACTION|>Move West<|END|>",  # step 0 plan 1
        "<|APPEND|>actions_log.txt|moved west<|END|><|TAIL|>actions_log.txt|2<|END|><|APPEND|>../x|y<|END|>",
        "<|SEARCH|>*|west<|END|><|COUNT|>actions_log.txt|west<|END|>",  # step 1 log 1
        "<|DONE|>",  # step 1 log 2
        "<|ACTION|>Fly To The Moon<|END|>",  # step 1 plan 0: invalid, the fallback runs
    ])
    env = make_env("crafter", None)
    try:
        spec = EpisodeSpec("ep-shown", env, 0, 2, structure, register_structure(log, structure))
        Episode(log, spec, policy, None, ENGINE_VERSION).run()
    finally:
        env.close()
    result = show_trace(log, "ep-shown")
    calls = [(s.step, c.phase, c.turn) for s in result.steps for c in s.calls]
    shown = dict(zip(calls, (r.messages[-1]["content"] for r in policy.requests)))
    tags = {c.kind: c.tag for c in structure.commands}
    fed = [(s.step, o) for s in result.steps for o in s.ops if (s.step, o.phase, o.turn + 1) in shown]
    assert len(fed) == 8  # READ, LIST, READ at plan 0; APPEND, TAIL, APPEND at log 0; SEARCH, COUNT at log 1
    for step, o in fed:
        header = f"[{tags[o.op]} {o.file}]" if o.file else f"[{tags[o.op]}]"
        assert f"{header} {o.result}" in shown[(step, o.phase, o.turn + 1)]
    read = result.steps[0].ops[len(CRAFTER_FILES)]
    assert (read.op, read.file, read.result) == ("read", "map_notes.txt", CRAFTER_FILES["map_notes.txt"])
    assert not result.steps[0].ops[len(CRAFTER_FILES) + 2].ok  # READ missing.txt
    printed = text_of(result)
    assert f"READ map_notes.txt  -> {CRAFTER_FILES['map_notes.txt'].splitlines()[0]}" in printed
    assert "LIST  -> actions_log.txt (20 bytes, 1 lines) … [+4 lines]" in printed
    assert "err READ missing.txt  -> ERROR: no file 'missing.txt'" in printed
    assert 'Noop  (wrote "Fly To The Moon")  INVALID' in printed


HOSTILE = "\x1b]0;pwned\x07\x1b[2J [bold]loud[/bold] [link=http://e.vil]x[/link] \x9b2J \u202eevil"


@pytest.mark.slow
def test_hostile_and_long_responses_print_escaped_and_shortened_but_stay_exact_in_json(tmp_path: Path) -> None:
    long_tail = "y" * 1000
    answers = [f"<|ACTION|>Noop<|END|>{HOSTILE} {long_tail}",
               f"<|APPEND|>actions_log.txt|{HOSTILE}<|END|><|DONE|>",
               "<|READ|>actions_log.txt<|END|>", "<|ACTION|>Noop<|END|>"]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({"text": a}) + "\n" for a in answers))
    data = tmp_path / "d"
    episode = record(data, "crafter", None, f"file:{path}", 2, "v0")
    with LmdbLog(data) as log:
        result = show_trace(log, episode)
    assert result.steps[0].calls[0].response == answers[0]  # exact: not shortened, not escaped
    assert result.steps[1].ops[0].args == (HOSTILE,)
    assert HOSTILE in (result.steps[1].ops[1].result or "")
    doc = json.loads(msgspec.json.encode(result))
    assert doc["steps"][0]["calls"][0]["response"] == answers[0]

    for terminal in (False, True):
        printed = text_of(result, terminal)
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", SGR.sub("", printed))
        assert "\\x1b]0;pwned\\x07\\x1b[2J [bold]loud[/bold] [link=http://e.vil]x[/link] \\x9b2J \\u202eevil" in printed
        assert f"… [+{len(answers[0]) - RESPONSE_CHARS} chars]" in printed and long_tail not in printed
        assert "\x1b]8;" not in printed  # no hyperlink made of the model's [link=...]


def test_colour_only_on_a_terminal_and_never_with_no_color(random_episodes: tuple[Path, dict[str, str]],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data, episodes = random_episodes
    with LmdbLog(data) as log:
        result = show_trace(log, episodes["nethack"], 0, 3)
    colour = re.compile(r"\x1b\[[0-9;]*(?:3[0-9]|9[0-7])[;m]")
    assert colour.search(text_of(result, terminal=True))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour.search(text_of(result, terminal=True))


@pytest.mark.slow
def test_bad_episode_or_range_is_one_line_naming_the_valid_range(random_episodes: tuple[Path, dict[str, str]],
                                                                 tmp_path: Path) -> None:
    data, episodes = random_episodes
    episode = episodes["minihack"]
    with LmdbLog(data) as log:
        last = show_trace(log, episode).steps[-1].step
        for start, end in [(5, 2), (-1, None), (None, last + 1), (last + 1, None)]:
            with pytest.raises(UserError, match=rf"it has steps 0\.\.{last} ") as caught:
                show_trace(log, episode, start, end)
            assert "\n" not in str(caught.value)
        with pytest.raises(UserError, match="unknown episode 'nope'"):
            show_trace(log, "nope")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    idle = record(tmp_path / "d0", "crafter", None, f"file:{empty}", 3)  # the model never answers: 0 steps
    with LmdbLog(tmp_path / "d0") as log, pytest.raises(UserError, match="took no step"):
        show_trace(log, idle)
