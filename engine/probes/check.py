"""The probe checker: is a reader's answer the key? Pure, total (any text in, a bool out).

Answers are normalised by type, so a right answer in other words counts and a hostile or
rambling one never does: numbers ("7", "seven", "step 7"), offsets ("2 east, 3 north" in
any order, "here"), lists of numbers in order, and item or message text (case, articles
and punctuation aside; the key may sit in a short answer, not in an essay).
"""

from __future__ import annotations

import re

from automem.engine.envs.common import offset_of

MAX_ANSWER = 500  # characters of an answer kept and checked
_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen twenty").split()
_NUMBER = re.compile(r"\d+|\b(?:" + "|".join(_WORDS) + r")\b")
_ARTICLES = {"a", "an", "the", "some"}
EXTRA_WORDS = 4  # a text answer may add this many words to the key ("it was a ...")


def numbers(text: str) -> list[int]:
    return [int(n) if n.isdigit() else _WORDS.index(n) for n in _NUMBER.findall(text.lower())]


def words(text: str) -> list[str]:
    return [w for w in re.sub(r"[^a-z0-9+\-]+", " ", text.lower()).split() if w not in _ARTICLES]


def correct(answer_type: str, key: str, answer: str) -> bool:
    """Whether `answer` gives `key` (`answer_type`: number | offset | list | text)."""
    answer = answer[:MAX_ANSWER]
    if answer_type == "number":
        found = numbers(answer)
        return len(set(found)) == 1 and found[0] == int(key)
    if answer_type == "offset":
        return offset_of(answer) == offset_of(key)
    if answer_type == "list":
        return numbers(answer) == numbers(key)
    want, got = words(key), words(answer)
    if not want or len(got) > len(want) + EXTRA_WORDS:
        return False
    return any(got[i : i + len(want)] == want for i in range(len(got) - len(want) + 1))
