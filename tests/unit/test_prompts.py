"""The agent loop's fast paths give exactly what the plain definitions give (replay relies on it)."""

from __future__ import annotations

import hashlib

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from automem.engine.agent import prompts
from automem.engine.memory import EMPTY, MemoryState, apply
from automem.engine.memory.reducer import _check_name, check_name
from automem.schemas.events import MemoryOp
from automem.schemas.structure import DEFAULT_LIMITS

SYSTEM = "You are an agent playing Crafter.\nValid actions: Noop, Move West, \"quoted\", ünïcödé 🌲"


def _plain_digest(messages: list[dict[str, str]]) -> str:
    return hashlib.blake2b(msgspec.json.encode(messages), digest_size=16).hexdigest()


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.text(max_size=40)), min_size=1, max_size=6))
def test_prompt_digest_with_a_cached_system_prefix(turns: list[tuple[str, str]]) -> None:
    digest = prompts.PromptDigest(SYSTEM)
    messages = [{"role": "system", "content": SYSTEM}] + [{"role": r, "content": c} for r, c in turns]
    assert digest(messages) == prompts.prompt_digest(messages) == _plain_digest(messages)


def test_prompt_digest_falls_back_when_the_prefix_differs() -> None:
    digest = prompts.PromptDigest(SYSTEM)
    for messages in (
        [{"role": "system", "content": "another system"}, {"role": "user", "content": "x"}],
        [{"content": SYSTEM, "role": "system"}, {"role": "user", "content": "x"}],  # key order is in the bytes
        [{"role": "system", "content": SYSTEM}],
        [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}],
    ):
        assert digest(messages) == _plain_digest(messages)


def test_listing_with_remembered_line_counts() -> None:
    counts: dict = {}
    state = EMPTY
    ops = [MemoryOp("write", "a.txt", ("one\ntwo",)), MemoryOp("append", "a.txt", ("three",)),
           MemoryOp("write", "b.txt", ("",)), MemoryOp("append", "b.txt", ("x",)), MemoryOp("write", "a.txt", ("z\n",))]
    for op in ops:
        state, _ = apply(state, op)
        assert prompts.listing(state, counts) == prompts.listing(state)
    assert prompts.listing(EMPTY, counts) == prompts.listing(EMPTY) == ""


def _plain_memory_digest(files: dict) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(files):
        h.update(name.encode("utf-8") + b"\x00" + files[name].version.encode("ascii") + b"\x01")
    return h.hexdigest()


def test_memory_digest_definition() -> None:
    for files in ({}, {"a.txt": "x"}, {"b.txt": "", "a.txt": "y\n", "mäp.txt": "🌲"}):
        state = MemoryState.from_files(files)
        assert state.digest() == _plain_memory_digest(state.files)


def test_file_name_verdicts_are_the_same_cached() -> None:
    limits = DEFAULT_LIMITS
    for name in ["notes.txt", "", "../x", "/etc", "C:x", "a/b", "a\\b", "bad\x00name", "x" * 65, "x" * 200, ".", "ok_1.md"]:
        assert check_name(name, limits) == _check_name(name, limits.max_name_len, limits.name_pattern, limits.allow_subdirs)
        assert check_name(name, limits) == check_name(name, limits)


def test_v0_system_prompts_render_as_str_format_did() -> None:
    """The placeholder renderer replaced `str.format`: today's structures render byte for byte
    as before (digests taken with the old code), so recorded prompt digests still match."""
    from automem.engine.envs import make_env
    from automem.engine.structure.seeds import GAMES, v0

    before = {"crafter": "9b69b6b5e6a28102ed3e33ac1f831698", "minihack": "391e3e47a2b703d6735e4d3ae345bf0d",
              "nethack": "51f37df79efdfd56e5f096592d46a0e1"}
    for env, digest in before.items():
        actions = make_env(env).valid_actions()
        for small in (False, True):
            s = v0(env, small)
            log, plan = prompts.system_prompts(s, actions)
            assert prompts.text_digest(log + "\x00" + plan) == digest
            assert log == s.log_system.format(game=GAMES[env], commands=prompts.command_help(s, "log"), actions="")
            assert plan == s.plan_system.format(game=GAMES[env], commands=prompts.command_help(s, "plan"),
                                                actions=prompts.action_list(actions), example=actions[1])
