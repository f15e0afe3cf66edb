"""The choice alphabet and the `Answer: value (letter)` line: how choices are lettered in a prompt, how a target
closes, and how a letter is read back. Every writer and reader of choice letters uses this module.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

# 26 letters: the longest alphabet a prompt can list. A record with 9 choices is lettered A-I and its "(I)" is
# read back by the same pattern that writes it.
CHOICE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# "130° (B)": the letter in parentheses that closes an answer value when choices were shown.
TRAILING_LETTER = re.compile(rf"\s*\(\s*([{CHOICE_LETTERS}])\s*\)\s*$")


class ChoiceError(ValueError):
    """More choices than letters, or a letter outside the alphabet; the message says which."""


def letter(index: int, letters: str = CHOICE_LETTERS) -> str:
    """The letter of the choice at `index` (0 -> "A")."""
    if not 0 <= index < len(letters):
        raise ChoiceError(f"choice index {index} has no letter: the alphabet {letters!r} has {len(letters)}")
    return letters[index]


def index_of(choice_letter: str | None, letters: str = CHOICE_LETTERS) -> int | None:
    """The index of a letter ("b" or "B" -> 1); None for None or a letter outside the alphabet."""
    if not choice_letter:
        return None
    position = letters.find(choice_letter.strip().upper())
    return position if position >= 0 and len(choice_letter.strip()) == 1 else None


def lettered(choices: Sequence[str] | Mapping[str, str] | None, letters: str = CHOICE_LETTERS) -> dict[str, str]:
    """{letter: text} from a list (lettered in order) or a mapping such as GeoQA's {"A": "40°", ...}."""
    if not choices:
        return {}
    if isinstance(choices, Mapping):
        return {str(k).strip().upper(): str(v) for k, v in choices.items()}
    choices = list(choices)
    if len(choices) > len(letters):
        raise ChoiceError(f"{len(choices)} choices given; the alphabet {letters!r} letters at most {len(letters)}")
    return {letters[i]: str(c) for i, c in enumerate(choices)}


def answer_value(value: str, choice_letter: str | None = None) -> str:
    """What follows "Answer:": the value, then the choice letter in parentheses when there is one."""
    return f"{value} ({choice_letter})" if choice_letter else str(value)


def answer_line(value: str, choice_letter: str | None = None) -> str:
    return f"Answer: {answer_value(value, choice_letter)}"


def record_letter(record, letters: str = CHOICE_LETTERS) -> str | None:
    """The gold letter of a problem record (None without choices or answer_index)."""
    if record.choices and record.answer_index is not None:
        return letter(record.answer_index, letters)
    return None


def split_letter(value: str | None) -> tuple[str, str | None]:
    """("130°", "B") from "130° (B)"; the value unchanged and None when no letter closes it."""
    value = value or ""
    match = TRAILING_LETTER.search(value)
    if not match:
        return value.strip(), None
    return value[: match.start()].strip(), match.group(1)


def without_letter(value: str | None) -> str:
    """An answer value without the "(B)" the format appends when choices are shown."""
    return split_letter(value)[0]
