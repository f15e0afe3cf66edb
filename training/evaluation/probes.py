"""Robustness probes: variants of a problem that should not change a model that understands it.

- `shuffle`: the choices in another order, the gold letter remapped;
- `rename`: point letters renamed consistently in question, choices, answer and gold steps (only where
  no diagram carries the old letters: text-only problems, or synthetic ones that are redrawn);
- `numbers`: given values changed and the gold answer recomputed (synthetic problems, rebuilt through
  the curriculum generator with their diagram redrawn: synthetic_probes.py).

Every probe is deterministic in (record id, probe seed), so a resumed run rebuilds the same variants.
"""
from __future__ import annotations

import copy
import hashlib
import random
import re
import string
from typing import Callable

PROBES = ("shuffle", "rename", "numbers")

# A token of point letters: "ABC" in "triangle ABC", "A" in "angle A", "O" in "⊙O"; not words.
_POINT_TOKEN = re.compile(r"(?<![A-Za-z0-9_])([A-Z]{1,4})(?![A-Za-z0-9_])")
# Uppercase tokens that are words or units, never point names.
# ("I" is not among them: geometry problems name the incentre I far more often than they say "I".)
_NOT_POINTS = {"II", "III", "IV", "OK", "AM", "PM", "USA", "NOT", "AND", "OR", "THE", "ON"}


def _rng(record_id: str, probe: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{probe}:{record_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def shuffle_choices(record, seed: int = 0):
    """The record with its choices permuted (never the identity) and answer_index following the gold choice."""
    if not record.choices or record.answer_index is None or len(record.choices) < 2:
        return None
    rng = _rng(record.id, "shuffle", seed)
    order = list(range(len(record.choices)))
    while order == sorted(order):
        rng.shuffle(order)
    probed = copy.deepcopy(record)
    probed.choices = [record.choices[i] for i in order]
    probed.answer_index = order.index(record.answer_index)
    probed.meta = {**record.meta, "probe": "shuffle", "choice_order": order}
    return probed


def _is_article(text: str, start: int, token: str) -> bool:
    """'A' used as the article ("A circle ...") rather than as a point."""
    if token != "A":
        return False
    return re.match(r"\s+[a-z]", text[start + 1:start + 3] or "") is not None


def point_letters(texts: list[str]) -> list[str]:
    """Letters used as point names in any of the texts, in order of first appearance."""
    letters: list[str] = []
    for text in texts:
        for match in _POINT_TOKEN.finditer(text):
            token = match.group(1)
            if token in _NOT_POINTS or _is_article(text, match.start(), token):
                continue
            for letter in token:
                if letter not in letters:
                    letters.append(letter)
    return letters


def rename_in_text(text: str, mapping: dict[str, str]) -> str:
    def swap(match: re.Match) -> str:
        token = match.group(1)
        if token in _NOT_POINTS or _is_article(text, match.start(), token) or any(c not in mapping for c in token):
            return token
        return "".join(mapping[c] for c in token)

    return _POINT_TOKEN.sub(swap, text)


def letter_mapping(letters: list[str], rng: random.Random) -> dict[str, str]:
    """A bijection on point letters that moves every letter when it can (draws from the whole alphabet)."""
    pool = [c for c in string.ascii_uppercase if c not in ("I", "O") or c in letters]
    for _ in range(100):
        targets = rng.sample(pool, len(letters))
        if all(a != b for a, b in zip(letters, targets)):
            return dict(zip(letters, targets))
    return dict(zip(letters, rng.sample(pool, len(letters))))


def rename_points(record, seed: int = 0):
    """The record with point letters renamed consistently in its texts, or None when it has a diagram
    (the diagram would still show the old letters; synthetic problems are redrawn by synthetic_probes)."""
    texts = [record.question, *(record.choices or []), record.answer]
    for step in record.steps or []:
        texts.extend(step.get(k, "") for k in ("cond", "map", "exec"))
    letters = point_letters(texts)
    if not letters or len(letters) > 20:
        return None
    if record.image:
        return None
    mapping = letter_mapping(letters, _rng(record.id, "rename", seed))
    probed = copy.deepcopy(record)
    probed.question = rename_in_text(record.question, mapping)
    if record.choices:
        probed.choices = [rename_in_text(c, mapping) for c in record.choices]
    probed.answer = rename_in_text(record.answer, mapping)
    if record.steps:
        probed.steps = [{k: (rename_in_text(v, mapping) if k != "theorem" else v) for k, v in step.items()}
                        for step in record.steps]
    probed.meta = {**record.meta, "probe": "rename", "letter_map": mapping}
    return probed


def synthetic_hooks(image_dir) -> tuple[Callable | None, Callable | None, str]:
    """(rename, renumber) functions that rebuild curriculum problems through the generator, redrawing
    their diagrams into `image_dir`; (None, None, why) when the generator cannot be imported."""
    from pathlib import Path

    try:
        import training.synthetic.generate  # noqa: F401 - the probes replay its random streams
        from training.evaluation import synthetic_probes
    except ImportError as err:
        return None, None, f"the curriculum generator is not importable ({err}); only the shuffle probe applies"
    image_dir = Path(image_dir)
    return (lambda record, seed: synthetic_probes.renamed(record, seed, image_dir),
            lambda record, seed: synthetic_probes.renumbered(record, seed, image_dir), "")


def probe_variants(record, benchmark: str, seed: int = 0, hooks=None) -> list[tuple[str, object]]:
    """(variant name, probed record) for every probe that applies to this record."""
    rename_hook, renumber_hook, _ = hooks if hooks is not None else (None, None, "")
    variants = []
    shuffled = shuffle_choices(record, seed)
    if shuffled is not None:
        variants.append(("shuffle", shuffled))
    renamed = None
    if benchmark == "synthetic" and rename_hook is not None:
        renamed = rename_hook(record, seed)
    if renamed is None and benchmark in ("geoqa", "formalgeo", "synthetic"):
        renamed = rename_points(record, seed)  # text-only problems only: None when a diagram shows the letters
    if renamed is not None:
        variants.append(("rename", renamed))
    if benchmark == "synthetic" and renumber_hook is not None:
        renumbered = renumber_hook(record, seed)
        if renumbered is not None:
            variants.append(("numbers", renumbered))
    return variants
