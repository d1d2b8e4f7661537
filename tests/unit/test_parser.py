"""The command parser against real-looking and adversarial model outputs: never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automem.engine.agent.episode import to_op
from automem.engine.agent.parser import (
    MAX_COMMANDS,
    action_index,
    parse,
    resolve_action,
    vocabulary,
)
from automem.engine.memory import EMPTY, apply
from automem.engine.structure.seeds import v0

S = v0("crafter")
V = vocabulary(S)

CASES = [
    # (text, phase, [(tag, fields)], done, action, error substrings)
    ("<|SEARCH|>map_notes.txt|tree<|END|>", "plan", [("SEARCH", ("map_notes.txt", "tree"))], False, None, []),
    ("Sure! Let me check.\n<|READ|>strategy.txt<|END|>\nThen <|ACTION|>Move West<|END|> is best.", "plan",
     [("READ", ("strategy.txt",))], False, "Move West", []),
    ("```\n<|APPEND|>actions_log.txt|Move West -> ok<|END|>\n```\n<|DONE|>", "log",
     [("APPEND", ("actions_log.txt", "Move West -> ok"))], True, None, []),
    ("<SEARCH>map_notes.txt|tree</SEARCH>", "plan", [("SEARCH", ("map_notes.txt", "tree"))], False, None, []),
    ("<|search|> map_notes.txt | water <|end|>", "plan", [("SEARCH", ("map_notes.txt", "water"))], False, None, []),
    ("<|WRITE|>strategy.txt|a|b|c<|END|><|DONE|>", "log", [("WRITE", ("strategy.txt", "a|b|c"))], True, None, []),
    ("<|APPEND|>notes.txt|unclosed line", "log", [("APPEND", ("notes.txt", "unclosed line"))], False, None, []),
    ("<|APPEND|>a.txt|one<|APPEND|>b.txt|two<|END|>", "log", [("APPEND", ("a.txt", "one")), ("APPEND", ("b.txt", "two"))], False, None, []),
    ("<|ACTION|>Do<|END|>", "log", [], False, None, ["not allowed in the LOG phase"]),
    ("<|WRITE|>x.txt|y<|END|><|ACTION|>Do<|END|>", "plan", [], False, "Do", ["not allowed in the PLAN phase"]),
    ("<|FLY|>moon<|END|>", "plan", [], False, None, ["unknown command <|FLY|>"]),
    ("<|ACTION|><|END|>", "plan", [], False, None, ["empty <|ACTION|>"]),
    ("", "log", [], False, None, []),
    ("just prose, no commands at all", "plan", [], False, None, []),
    ("<|READ|>../../etc/passwd<|END|>", "plan", [("READ", ("../../etc/passwd",))], False, None, []),
    ("<|APPEND|><|APPEND|>x<|END|>", "log", [("APPEND", ("", "")), ("APPEND", ("x", ""))], False, None, []),
    ("<|ACTION|>Move West\nbecause trees<|END|>", "plan", [], False, "Move West", []),
    ("<|DONE|><|APPEND|>a.txt|after done<|END|>", "log", [], True, None, []),
    ("<<|SEARCH|>>a|b<<|END|>>", "plan", [("SEARCH", ("a", "b"))], False, None, []),
    ("<|SEARCH|>mäp.txt|🌲 tree<|END|>", "plan", [("SEARCH", ("mäp.txt", "🌲 tree"))], False, None, []),
]


@pytest.mark.parametrize("text,phase,commands,done,action,errors", CASES)
def test_table(text: str, phase: str, commands: list, done: bool, action: str | None, errors: list[str]) -> None:
    result = parse(text, V, phase)
    assert [(c.tag, c.fields) for c in result.commands] == commands
    assert result.done == done and result.action == action
    for needle in errors:
        assert any(needle in e for e in result.errors), result.errors


def test_huge_and_junk_inputs() -> None:
    big = "x" * 1_000_000
    assert parse(big, V, "log").commands == ()
    r = parse("<|APPEND|>a.txt|" + big + "<|END|>", V, "log")
    assert r.commands == () and any("over" in e for e in r.errors)
    junk = bytes(range(256)).decode("latin-1") * 100
    parse(junk, V, "plan")
    many = "<|SEARCH|>a|b<|END|>" * 100
    r = parse(many, V, "plan")
    assert len(r.commands) == MAX_COMMANDS and any("more than" in e for e in r.errors)
    nested = "<|APPEND|>a.txt|<|WRITE|>b.txt|<|READ|>c<|END|><|END|><|END|>"
    r = parse(nested, V, "log")
    assert [c.tag for c in r.commands] == ["APPEND", "WRITE", "READ"]


def test_traversal_reaches_the_reducer_as_an_error() -> None:
    [cmd] = parse("<|WRITE|>../../etc/passwd|pwned<|END|>", V, "log").commands
    state, result = apply(EMPTY, to_op(cmd), S.limits)
    assert not result.ok and state is EMPTY


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("<|>/ENDSARCHWITPOLa.tx\n|`") + ["<|APPEND|>", "<|END|>", "<|ACTION|>", "<|DONE|>", "<|SEARCH|>"]), max_size=80).map("".join))
def test_never_raises(text: str) -> None:
    for phase in ("log", "plan"):
        result = parse(text, V, phase)
        for cmd in result.commands:
            apply(EMPTY, to_op(cmd), S.limits)


def test_resolve_action() -> None:
    valid = action_index(["Noop", "Move West", "Move East", "Do", "Place Table", "Make Wood Pickaxe"])
    assert resolve_action("move west", valid) == "Move West"
    assert resolve_action("Move  West, Move East, Move North", valid) == "Move West"
    assert resolve_action("Noop -> reward 1", valid) == "Noop"
    assert resolve_action("Doing nothing", valid) == "Doing nothing"  # "Do" is not a word prefix here
    assert resolve_action("Make Wood Pickaxe now", valid) == "Make Wood Pickaxe"
    assert resolve_action("fly", valid) == "fly"
    assert resolve_action("", valid) == ""
    letters = action_index(["a", "A", "far east"])
    assert resolve_action("a", letters) == "a" and resolve_action("A", letters) == "A"
    assert resolve_action("FAR  EAST", letters) == "far east"
