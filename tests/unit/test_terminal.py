"""Terminal safety: hostile log text comes out with no character that could drive a terminal."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from automem.engine.views.terminal import markup, safe

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

HOSTILE = [
    "\x1b]0;pwned\x07",  # OSC: set the terminal title
    "\x1b[2J\x1b[H",  # CSI: clear the screen, cursor home
    "ding\x07",  # BEL
    "\x9b2J",  # C1 CSI
    "\x9d0;t\x9c",  # C1 OSC ... ST
    "over\rwrite\b\x7f",  # carriage return, backspace, DEL
    "\u202eevil\u202c and \u2066isolated\u2069",  # bidi overrides and isolates
    "line\u2028separator\u2029",  # line and paragraph separators
    "\ud800 lone \udfff surrogates",
    "\x00nul\x0bvt\x0cff\x1f",
]


def unsafe(char: str) -> bool:
    """What no text printed to a terminal may still hold."""
    category = unicodedata.category(char)
    return (category == "Cc" and char not in "\n\t") or category in ("Cs", "Zl", "Zp") or char in BIDI


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_comes_out_visible_and_inert(text: str) -> None:
    out = safe(text)
    assert not any(unsafe(c) for c in out)
    out.encode("utf-8")  # no lone surrogate left: every terminal encoding can write it
    assert "\\x" in out or "\\u" in out  # escaped visibly, not dropped


def test_escapes_read_as_python_writes_them() -> None:
    assert safe("\x1b]0;x\x07\x1b[2J") == "\\x1b]0;x\\x07\\x1b[2J"
    assert safe("\x9b") == "\\x9b"
    assert safe("\u202eabc") == "\\u202eabc"
    assert safe("\ud800") == "\\ud800"


@pytest.mark.parametrize("text", ["plain text", "two\nlines\n", "tab\tseparated", "café ✓ 日本語 🙂",
                                  "a literal \\x1b stays", "[bold]not touched by safe[/bold]", ""])
def test_plain_text_newlines_and_tabs_are_unchanged(text: str) -> None:
    assert safe(text) == text


@given(st.text())
def test_no_unsafe_character_survives(text: str) -> None:
    out = safe(text)
    assert not any(unsafe(c) for c in out)
    if not any(unsafe(c) for c in text):
        assert out == text


def test_markup_is_literal_through_rich() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="truecolor", width=200)
    console.print(markup("[bold]x[/bold] [link=http://e.vil]y[/link] \x1b[2J"), highlight=False)
    printed = buf.getvalue()
    assert "[bold]x[/bold] [link=http://e.vil]y[/link] \\x1b[2J" in printed
    assert "\x1b[1m" not in printed and "\x1b]8;" not in printed  # no bold, no hyperlink
    assert "\x1b[2J" not in printed


def test_safe_text_through_rich_keeps_only_rich_own_codes() -> None:
    buf = io.StringIO()
    Console(file=buf, force_terminal=False, width=200).print(Text(safe("".join(HOSTILE))), highlight=False)
    printed = buf.getvalue()
    assert not any(unsafe(c) for c in printed)
