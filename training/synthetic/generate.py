"""Generate the curriculum: problem records with checked gold steps, PNG diagrams and a manifest.

Every problem is a pure function of (seed, split, index): its own random stream, so any problem can
be regenerated alone and the output is byte-identical from run to run (and with any worker count).
"""
from __future__ import annotations

import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from model.checker import check_solution
from model.solution_format import parse
from training.records import ProblemRecord, write_records
from training.targets import answer_value, target_text

from .core import CoreBank, Draft, Figure, Num, Picker
from .drawing import STYLES, render_png
from .families import Family
from .phrasing import phrase
from .splits import CENTRE, PLANS, SPLITS, chains_for, check_disjoint, families_for

GENERATOR_VERSION = "1.0"
MAX_ATTEMPTS = 50
AVOID_ATTEMPTS = 25
_BANK = CoreBank()


class GenerationError(RuntimeError):
    """A family could not produce a checked problem; the message names family, split and index."""


@dataclass
class Problem:
    record: ProblemRecord
    png: bytes


def split_sizes(n: int, test_fraction: float = 0.05) -> dict[str, int]:
    """Problems per split for n in total: each test split gets test_fraction of n, train the rest."""
    if n < len(SPLITS):
        raise ValueError(f"--n {n} is too small: every one of the {len(SPLITS)} splits needs at least one problem")
    if not 0 < test_fraction < 0.25:
        raise ValueError(f"test_fraction {test_fraction} must be in (0, 0.25) so that train keeps most problems")
    each = max(1, round(n * test_fraction))
    sizes = {split: each for split in SPLITS[1:]}
    sizes["train"] = n - sum(sizes.values())
    return {split: sizes[split] for split in SPLITS}


# ------------------------------------------------------------------------------------ one problem

def relabel(draft: Draft, table: dict[int, str]) -> None:
    """Rename points in every text of the draft and in its figure (simultaneous, character-wise)."""
    draft.given = draft.given.translate(table)
    draft.ask = draft.ask.translate(table)
    draft.steps = [{k: v.translate(table) for k, v in step.items()} for step in draft.steps]
    fig = draft.figure
    name = lambda p: p.translate(table)  # noqa: E731 - point names are short strings
    draft.figure = Figure(
        pts={name(k): v for k, v in fig.pts.items()},
        segs=[(name(a), name(b)) for a, b in fig.segs],
        circles=[(name(c), r) for c, r in fig.circles],
        arcs=[(name(v), name(a), name(b), n) for v, a, b, n in fig.arcs],
        rights=[(name(v), name(a), name(b)) for v, a, b in fig.rights],
        parallels=[(name(a), name(b), n) for a, b, n in fig.parallels],
        ticks=[(name(a), name(b), n) for a, b, n in fig.ticks],
        dots=[name(d) for d in fig.dots],
        angle_labels=[(name(v), name(a), name(b), text) for v, a, b, text in fig.angle_labels])


def make_choices(rng, draft: Draft) -> tuple[list[str], int]:
    """Gold plus three distractors from typical mistakes (then generic slips), shuffled."""
    gold = draft.answer.text(draft.unit)
    a = draft.answer
    step = 10 if draft.unit == "°" else 1
    generic = [a * 2, a / 2, a + Num(step, a.sym), a - Num(step, a.sym), a + Num(2 * step, a.sym), a * 3]
    if draft.unit == "°":
        generic = [Num(180) - a, Num(90) - a] + generic
    seen, distractors = {gold}, []
    for value in list(draft.mistakes) + generic:
        if not value.positive or (draft.unit == "°" and value.coef >= 360 > a.coef):
            continue
        text = value.text(draft.unit)
        if "/" in text or len(text) > 12 or text in seen:
            continue
        seen.add(text)
        distractors.append(text)
        if len(distractors) == 3:
            break
    if len(distractors) < 3:
        raise GenerationError(f"{draft.family}: could not find three distractors for {gold}")
    choices = [gold] + distractors
    rng.shuffle(choices)
    return choices, choices.index(gold)


def verify(record: ProblemRecord) -> str | None:
    """None when the theorem target parses, every step checks verified and it ends at the gold answer."""
    text = target_text(record, "theorem")
    solution = parse(text, _BANK)
    if solution.problems:
        return f"target does not parse cleanly: {solution.problems[0]}"
    for number, check in enumerate(check_solution(solution, _BANK), 1):
        if check.status != "verified":
            return f"step {number} ({solution.steps[number - 1].theorem}) is {check.status}: {check.reason}"
    last = solution.steps[-1].exec.rpartition("=")[2].strip()
    if last != record.answer:
        return f"the last step concludes {last!r}, not the gold answer {record.answer!r}"
    if solution.answer != answer_value(record):
        return f"Answer line {solution.answer!r} differs from the gold {answer_value(record)!r}"
    return None


def make_problem(split: str, index: int, seed: int, avoid: frozenset[str] = frozenset(), *, check: bool = True,
                 draw: bool = True) -> Problem:
    """Problem number `index` of `split`: a pure function of its arguments. `check=False` skips the
    step checker and `draw=False` the PNG (png is b""): only for fast statistics over the split plan."""
    plan = PLANS[split]
    families = families_for(split)
    family: Family = families[index % len(families)]
    reasons = Counter()
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"{seed}/{split}/{index}/{attempt}")
        chain = rng.choice(chains_for(family, split))
        picker = Picker(rng, family.name, plan.regime)
        draft = family.build(rng, picker, chain)
        draft.family, draft.chain = family.name, tuple(chain)
        if plan.regime == "out" and not picker.out:
            reasons["no value outside the train ranges"] += 1
            continue
        canonical = sorted({c for name in draft.figure.pts for c in name if c.isupper()} - {CENTRE})
        letters = sorted(rng.sample(plan.letters, len(canonical)))
        relabel(draft, str.maketrans(dict(zip(canonical, letters))))
        phrasing_id = rng.choice(plan.phrasings)
        style_id = rng.choice(plan.styles)
        question = phrase(phrasing_id, draft.given, draft.ask)
        # test_iid avoids questions train already has; families with few distinct questions (a polygon
        # has only its number of sides) run out, so after AVOID_ATTEMPTS a repeat is kept and flagged
        repeat = question in avoid
        if repeat and attempt < AVOID_ATTEMPTS:
            reasons["same question as a train problem"] += 1
            continue
        try:
            choices, answer_index = make_choices(rng, draft)
        except GenerationError as err:
            reasons[str(err)] += 1
            continue
        record_id = f"syn{seed}-{split}-{index:06d}"
        record = ProblemRecord(
            id=record_id, source="synthetic", split=split, image=f"images/{split}/{record_id}.png",
            question=question, choices=choices, answer=draft.answer.text(draft.unit), answer_index=answer_index,
            knowledge_points=sorted(set(chain)), steps=draft.steps,
            meta={"family": family.name, "chain": list(chain), "letters": "".join(letters),
                  "phrasing_id": phrasing_id, "style_id": style_id, "regime": plan.regime,
                  "values": dict(picker.values), "out_of_range": list(picker.out), "question_in_train": repeat,
                  "generator_version": GENERATOR_VERSION})
        record.solution = target_text(record, "plain").rpartition("\nAnswer:")[0]
        problem = verify(record) if check else None
        if problem:
            reasons[problem] += 1
            continue
        png = render_png(draft.figure, STYLES[style_id], rng) if draw else b""
        return Problem(record, png)
    raise GenerationError(f"family {family.name}, split {split}, index {index}: no checked problem after "
                          f"{MAX_ATTEMPTS} attempts; reasons: {dict(reasons.most_common(3))}")


# ------------------------------------------------------------------------------------ a whole run

_AVOID: frozenset[str] = frozenset()


def _init_worker(avoid: frozenset[str]) -> None:
    global _AVOID
    _AVOID = avoid


def _make(args: tuple[str, int, int]) -> Problem:
    split, index, seed = args
    return make_problem(split, index, seed, _AVOID if split == "test_iid" else frozenset())


def generate(n: int, seed: int, out: str | Path, test_fraction: float = 0.05, workers: int = 1,
             progress: bool = True) -> dict:
    """Write out/<split>.jsonl, out/images/<split>/*.png and out/manifest.json; return the manifest."""
    check_disjoint()
    out = Path(out)
    sizes = split_sizes(n, test_fraction)
    manifest = {"generator": "training.synthetic", "version": GENERATOR_VERSION, "seed": seed, "n": n,
                "test_fraction": test_fraction, "splits": {}}
    train_questions: frozenset[str] = frozenset()
    for split in SPLITS:
        image_dir = out / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(split, i, seed) for i in range(sizes[split])]
        records = []
        bar = _progress(len(jobs), f"synthetic {split}", progress and len(jobs) >= 500)
        for problem in _run(jobs, workers, train_questions if split == "test_iid" else frozenset()):
            (out / problem.record.image).write_bytes(problem.png)
            records.append(problem.record)
            bar.update(1)
        bar.close()
        write_records(records, out / f"{split}.jsonl")
        if split == "train":
            train_questions = frozenset(r.question for r in records)
        manifest["splits"][split] = {
            "count": len(records),
            "families": dict(sorted(Counter(r.meta["family"] for r in records).items())),
            "chains": dict(sorted(Counter(" > ".join(r.meta["chain"]) for r in records).items())),
            "question_in_train": sum(r.meta["question_in_train"] for r in records),
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _run(jobs, workers: int, avoid: frozenset[str]):
    if workers <= 1:
        _init_worker(avoid)
        yield from map(_make, jobs)
        return
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(avoid,)) as pool:
        yield from pool.imap(_make, jobs, chunksize=32)


class _Quiet:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, desc: str, show: bool):
    if not show:
        return _Quiet()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="problem", file=sys.stderr)
