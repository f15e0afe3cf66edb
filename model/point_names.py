"""Point names a model never saw: renamed into the letters it was trained on, and back in its answer.

A model trained from scratch (the embedded demo) has seen only the point letters of its training problems
(A-N in the synthetic curriculum). Letters outside that alphabet have untrained embeddings, and its output
layer has learned never to produce them, so it cannot copy "△PQR" into its steps however well it has learned
to copy "△ABC". Point names are mere symbols, so the tutor renames each unseen letter to a letter of the
trained alphabet that the problem does not use, and renames the answer back. A checkpoint trained by train.py
from scratch records its alphabet in its serving profile (model.profile, `point_names`); a pretrained model
(the 7B) has none and is served unchanged.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from model.choices import CHOICE_LETTERS

# A capital letter not followed by a small one: the D, H and E of "∠DHE", not the T of "Theorem". The same rule
# as the from-scratch tokenizer's split (model.tiny.POINT_LETTER_REGEX), restricted to ASCII point names.
POINT_LETTER = re.compile(r"[A-Z](?![a-z])")
# A point renamed back never touches the choice letter closing an Answer line: "Answer: 40° (B)".
ANSWER_CHOICE = re.compile(rf"^(\s*Answer:.*\()([{CHOICE_LETTERS}])(\)\s*)$")
# O names a circle's centre by convention (and in the curriculum): it is never given to another point.
CENTRE = "O"


def point_letters(text: str) -> list[str]:
    """The point letters of `text`, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in POINT_LETTER.finditer(text or ""):
        seen.setdefault(match.group(), None)
    return list(seen)


def trained_alphabet(texts: Iterable[str]) -> str:
    """Every point letter that occurs in `texts` (the training questions), sorted."""
    letters: set[str] = set()
    for text in texts:
        letters.update(POINT_LETTER.findall(text or ""))
    return "".join(sorted(letters))


@dataclass
class Renaming:
    """A one-to-one map of unseen letters to free trained letters; empty when the problem needs none."""
    forward: dict[str, str] = field(default_factory=dict)

    @property
    def backward(self) -> dict[str, str]:
        return {new: old for old, new in self.forward.items()}

    def rename(self, text: str | None) -> str | None:
        return _translate(text, self.forward) if text is not None else None

    def restore(self, text: str) -> str:
        if not self.forward or not text:
            return text
        return "".join(_restore_line(line, self.backward) for line in text.splitlines(keepends=True))

    def restore_stream(self, pieces: Iterable[str]) -> Iterator[str]:
        """`restore` over streamed text, a line at a time: a line's last letter may be a point or the start of
        a word, and an Answer line's "(B)" is a choice, which only the whole line tells."""
        if not self.forward:
            yield from pieces
            return
        pending = ""
        for piece in pieces:
            pending += piece
            complete, newline, pending = pending.rpartition("\n")
            if newline:
                yield self.restore(complete + newline)
        if pending:
            yield self.restore(pending)


def _restore_line(line: str, backward: dict[str, str]) -> str:
    choice = ANSWER_CHOICE.match(line)
    if choice:  # the answer's value is renamed back, its choice letter is not
        return _translate(choice.group(1), backward) + choice.group(2) + choice.group(3)
    return _translate(line, backward)


def _translate(text: str, mapping: dict[str, str]) -> str:
    if not mapping or not text:
        return text
    return POINT_LETTER.sub(lambda m: mapping.get(m.group(), m.group()), text)


def plan_renaming(texts: Iterable[str | None], alphabet: str | None) -> Renaming:
    """Rename every point letter of `texts` outside `alphabet` to a letter of `alphabet` none of them uses.

    The new letters keep the old ones' alphabetical order and are spread over the free letters: the curriculum
    names a figure with a sorted random subset of its letters (△AFN), and a model trained on it reads △NML as
    a new kind of name. Letters that find no free partner stay as they are."""
    if not alphabet:
        return Renaming()
    used = {letter for text in texts if text for letter in point_letters(text)}
    unseen = sorted(letter for letter in used if letter not in alphabet)
    free = [letter for letter in sorted(alphabet) if letter not in used and letter != CENTRE]
    if not unseen or not free:
        return Renaming()
    k = min(len(unseen), len(free))
    picked = [free[round(i * (len(free) - 1) / (k - 1))] for i in range(k)] if k > 1 else [free[len(free) // 2]]
    return Renaming(dict(zip(unseen, picked)))


def rename_problem(question: str, choices, alphabet: str | None) -> tuple[Renaming, str, list[str] | None]:
    """The renaming a problem needs, with its question and choices renamed (what the model is shown)."""
    renaming = plan_renaming([question, *(choices or [])], alphabet)
    return renaming, renaming.rename(question), [renaming.rename(c) for c in choices] if choices else None
