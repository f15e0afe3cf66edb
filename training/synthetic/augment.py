"""Filler-word augmentation of curriculum questions, for a model trained from scratch on five phrasings.

Such a model learns the five templates by heart: an unseen wording ("Look at the figure: ... How large is
∠QUW?") puts tokens it never saw around the givens, and its steps fall apart. Re-wording part of the training
questions with random filler words (pseudo-words and template words in random order, as in random-insertion
augmentation) teaches it to read the givens and the asked object by their shape (∠, △, =, values; the asked
object is the last one named) and to ignore the words around them. The held-out phrasings of test_surface are
never used: the filler is random, so any real phrasing is as new to the model as before.
"""
from __future__ import annotations

import random
import re
import string
from dataclasses import replace
from functools import lru_cache

from .phrasing import PHRASINGS

# Words of the training phrasings only (PHRASINGS[:5] in splits.TRAIN_PHRASINGS), lower-case.
TEMPLATE_WORDS = ("as", "shown", "in", "the", "figure", "what", "is", "given", "that", "then", "equal", "to",
                  "calculate", "find")


@lru_cache(maxsize=None)
def _template_pattern(phrasing_id: int) -> re.Pattern:
    pieces = re.split(r"(\{given\}|\{Given\}|\{ask\})", PHRASINGS[phrasing_id])
    regex = "".join("(?P<given>.+)" if p in ("{given}", "{Given}") else "(?P<ask>.+)" if p == "{ask}" else re.escape(p)
                    for p in pieces)
    return re.compile(regex, re.DOTALL)


def split_question(question: str, phrasing_id: int) -> tuple[str, str] | None:
    """(given, ask) of a question written with PHRASINGS[phrasing_id], or None if it does not fit."""
    if not 0 <= phrasing_id < len(PHRASINGS):
        return None
    match = _template_pattern(phrasing_id).fullmatch(question)
    if match is None:
        return None
    given = match.group("given")
    return given[:1].lower() + given[1:], match.group("ask")


def _words(rng: random.Random, low: int, high: int) -> list[str]:
    words = []
    for _ in range(rng.randint(low, high)):
        if rng.random() < 0.6:
            word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 7)))
        else:
            word = rng.choice(TEMPLATE_WORDS)
        words.append(word.capitalize() if rng.random() < 0.2 else word)
    return words


def filler_question(given: str, ask: str, rng: random.Random) -> str:
    """The givens and the asked object with random filler words before, between and after them."""
    lead = _words(rng, 0, 4)
    head = (" ".join(lead) + rng.choice([",", ":", ""]) + " ") if lead else ""
    if head:
        head = head[:1].upper() + head[1:]
        body = given
    else:
        body = given[:1].upper() + given[1:]
    middle = " ".join(_words(rng, 1, 3))
    tail = " ".join(_words(rng, 0, 2))
    end = (" " + tail if tail else "") + rng.choice(["?", ".", " ()", "?"])
    return f"{head}{body}{rng.choice(['. ', ', '])}{middle.capitalize() if rng.random() < 0.5 else middle} {ask}{end}"


def augment_record(record, probability: float, seed: int):
    """The record with its question re-worded with filler (with `probability`, deterministic in seed and id);
    records that are not curriculum questions, or whose phrasing is unknown, come back unchanged."""
    phrasing_id = (record.meta or {}).get("phrasing_id")
    if probability <= 0 or not isinstance(phrasing_id, int):
        return record
    rng = random.Random(f"{seed}:{record.id}")
    if rng.random() >= probability:
        return record
    parts = split_question(record.question, phrasing_id)
    if parts is None:
        return record
    return replace(record, question=filler_question(*parts, rng), meta={**record.meta, "filler_augmented": True})
