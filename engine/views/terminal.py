"""Log text made safe to print on a terminal: the one place that decides what is escaped.

Model-written text (responses, memory lines, observations) is untrusted. Printed raw, an
`ESC]0;...BEL` retitles the terminal, `ESC[2J` clears it, `\\r` or a bidi override hides
or reorders what is on the line, and `[bold]`/`[link=...]` is rich markup. `safe` turns
every such character into a visible escape, `\\x1b` or `\\u202e` as Python writes them:

- C0 controls (U+0000-U+001F) except newline and tab, DEL (U+007F), C1 controls
  (U+0080-U+009F, `\\x9b` is a one-byte CSI on some terminals);
- bidi controls (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069) and the line
  and paragraph separators U+2028-U+2029;
- lone surrogates (U+D800-U+DFFF), which no terminal encoding can even write.

Everything else, newlines and backslashes included, is left as it is: the text stays
readable, and a literal backslash sequence in the input is printed as written (the
escaping is for safety, not a reversible encoding). Rich markup is not touched by `safe`:
text going through rich goes as `Text`, printed with `markup=False, highlight=False`, or
through `markup` below.
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe(text: str) -> str:
    """`text` with every character that could drive or deceive a terminal made visible."""
    return _UNSAFE.sub(_visible, text)


def markup(text: str) -> str:
    """`safe(text)` for use inside a rich markup string: its own `[...]` stays literal."""
    return _escape_markup(safe(text))
