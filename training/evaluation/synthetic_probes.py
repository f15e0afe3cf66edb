"""Probes for synthetic-curriculum problems, rebuilt through the generator so the diagram is redrawn.

A curriculum problem is a pure function of (seed, split, index) (training/synthetic/generate.py): we
replay its random stream up to the point where the letters or the values are drawn, change only that,
and let the generator's own code phrase, check and draw the result:

- `renamed`: the same figure, values, phrasing, choices and drawing style with other point letters;
- `renumbered`: the same family, theorem chain, letters, phrasing and style with other values drawn from
  the split's own ranges; the gold answer, gold steps and typical-mistake choices are recomputed, and the
  new gold steps pass the step checker (the generator's `verify`).

Returns None when the record is not a curriculum problem of this generator version (then the caller
falls back to the text-only probes).
"""
from __future__ import annotations

import random
import re
import string
from pathlib import Path

_ID = re.compile(r"syn(?P<seed>\d+)-(?P<split>[a-z_]+)-(?P<index>\d+)")
MAX_TRIES = 50


def _locate(record):
    """(generator modules, seed, split, index, family) or None."""
    match = _ID.fullmatch(record.id)
    if not match:
        return None
    try:
        from training.synthetic import generate as gen
        from training.synthetic.core import Picker
        from training.synthetic.splits import CENTRE, PLANS, chains_for, families_for
    except ImportError:
        return None
    split, index, seed = match["split"], int(match["index"]), int(match["seed"])
    if split not in PLANS:
        return None
    families = families_for(split)
    family = families[index % len(families)]
    if family.name != (record.meta or {}).get("family"):
        return None
    return gen, Picker, CENTRE, PLANS[split], chains_for, seed, split, index, family


def _canonical(draft, centre) -> list[str]:
    return sorted({c for name in draft.figure.pts for c in name if c.isupper()} - {centre})


def _finish(gen, record, draft, rng, letters_table, phrasing_id, style_id, choices_rng, image_dir: Path, variant: str):
    """Relabel, phrase, choose, check and draw exactly as the generator does; None if it does not check."""
    from training.records import ProblemRecord
    from training.synthetic.drawing import STYLES, render_png
    from training.synthetic.phrasing import phrase

    gen.relabel(draft, letters_table)
    question = phrase(phrasing_id, draft.given, draft.ask)
    try:
        choices, answer_index = gen.make_choices(choices_rng, draft)
    except gen.GenerationError:
        return None
    image = image_dir / f"{record.id}-{variant}.png"
    probed = ProblemRecord(
        id=record.id, source=record.source, split=record.split, image=str(image), question=question, choices=choices,
        answer=draft.answer.text(draft.unit), answer_index=answer_index, knowledge_points=list(record.knowledge_points),
        steps=draft.steps, meta={**record.meta, "probe": variant})
    if gen.verify(probed) is not None:
        return None
    image_dir.mkdir(parents=True, exist_ok=True)
    image.write_bytes(render_png(draft.figure, STYLES[style_id], rng))
    return probed


def _replay(located, record):
    """Replay the generator's attempts until one reproduces `record`; yield the state at that attempt."""
    gen, Picker, centre, plan, chains_for, seed, split, index, family = located
    for attempt in range(gen.MAX_ATTEMPTS):
        rng = random.Random(f"{seed}/{split}/{index}/{attempt}")
        chain = rng.choice(chains_for(family, split))
        picker = Picker(rng, family.name, plan.regime)
        draft = family.build(rng, picker, chain)
        draft.family, draft.chain = family.name, tuple(chain)
        if plan.regime == "out" and not picker.out:
            continue
        canonical = _canonical(draft, centre)
        letters = sorted(rng.sample(plan.letters, len(canonical)))
        if "".join(letters) != record.meta.get("letters") or list(chain) != list(record.meta.get("chain", [])):
            continue
        # the generator may have skipped an attempt after phrasing it (a test_iid question equal to a train
        # one): confirm this attempt phrases exactly the record's question, then rewind the stream
        import copy

        from training.synthetic.phrasing import phrase

        state = rng.getstate()
        phrasing_id = rng.choice(plan.phrasings)
        rng.choice(plan.styles)
        check = copy.deepcopy(draft)
        gen.relabel(check, str.maketrans(dict(zip(canonical, letters))))
        rng.setstate(state)
        if phrase(phrasing_id, check.given, check.ask) != record.question:
            continue
        return rng, chain, draft, canonical, letters
    return None


def renamed(record, seed: int, image_dir: Path):
    located = _locate(record)
    if located is None:
        return None
    gen, _, centre, plan, *_ = located
    state = _replay(located, record)
    if state is None:
        return None
    rng, chain, draft, canonical, letters = state
    phrasing_id = rng.choice(plan.phrasings)
    style_id = rng.choice(plan.styles)
    if phrasing_id != record.meta.get("phrasing_id") or style_id != record.meta.get("style_id"):
        return None
    # other letters, never the centre's and, where the alphabet allows, none of the original ones
    pick = random.Random(f"rename/{seed}/{record.id}")
    pool = [c for c in string.ascii_uppercase if c != centre and c not in letters]
    if len(pool) < len(canonical):
        pool = [c for c in string.ascii_uppercase if c != centre]
    new_letters = sorted(pick.sample(pool, len(canonical)))
    table = str.maketrans(dict(zip(canonical, new_letters)))
    probed = _finish(gen, record, draft, rng, table, phrasing_id, style_id, rng, image_dir, "rename")
    if probed is None:
        return None
    probed.meta["letters"] = "".join(new_letters)
    probed.meta["letter_map"] = dict(zip(letters, new_letters))
    # the choices came from the same random stream, so they are the original ones in the original order
    return probed


def renumbered(record, seed: int, image_dir: Path):
    located = _locate(record)
    if located is None:
        return None
    gen, Picker, centre, plan, chains_for, _, split, index, family = located
    letters = record.meta.get("letters", "")
    chain = list(record.meta.get("chain", []))
    for attempt in range(MAX_TRIES):
        rng = random.Random(f"renumber/{seed}/{record.id}/{attempt}")
        picker = Picker(rng, family.name, plan.regime)
        draft = family.build(rng, picker, tuple(chain) if chain else rng.choice(chains_for(family, split)))
        draft.family, draft.chain = family.name, tuple(chain)
        if plan.regime == "out" and not picker.out:
            continue
        if dict(picker.values) == record.meta.get("values"):
            continue  # the same numbers again: not a perturbation
        canonical = _canonical(draft, centre)
        if len(canonical) != len(letters):
            continue
        table = str.maketrans(dict(zip(canonical, letters)))
        probed = _finish(gen, record, draft, rng, table, record.meta.get("phrasing_id"), record.meta.get("style_id"),
                         rng, image_dir, "numbers")
        if probed is None or probed.question == record.question:
            continue
        probed.meta["values"] = dict(picker.values)
        return probed
    return None
