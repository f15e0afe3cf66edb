"""Build a training file: load a source, attach steps where the source allows, render one target kind.

Output: our record JSONL (training/records.py), each record carrying its rendered target in
meta["target"] (kind in meta["target_kind"], instruction in meta["instruction"] when prompt diversity is on).
Rejected problems go to a rejects JSONL beside the output ({id, stage, reason}), and are counted by reason.
"""
from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from training.loaders import BadRecords, load
from training.records import ProblemRecord, write_records

SOURCES = ("formalgeo7k", "geoqa", "math", "records", "hf")
TARGETS = ("theorem", "plain", "answer")


@dataclass
class BuildOptions:
    split: str | None = None          # formalgeo7k: train | val | test; hf: dataset split
    text_only: bool = False           # build without diagrams (FormalGeo7k ships them for the test split only)
    skip_bad: bool = False            # bad records to the rejects file instead of stopping
    limit: int | None = None          # first N records (after the split filter)
    matched: bool = True              # formalgeo7k plain/answer: keep only problems with an accepted theorem target
    workers: int = 2
    timeout: float = 30.0             # seconds per FormalGeo replay
    shuffle_choices: bool = False
    instructions: bool = False        # prompt-diversity pool
    seed: int = 0
    replay_order_seed: int | None = None  # replay problems in a seeded random order (partial runs are then a sample)
    progress: bool = True
    teacher: Any = None               # a training.teacher.TeacherConfig: rewrite records without steps (MATH)
    loader: dict[str, Any] = field(default_factory=dict)  # extra loader arguments (answers, image_root, columns...)


@dataclass
class BuildSummary:
    written: int = 0
    loaded: int = 0
    rejected: Counter = field(default_factory=Counter)
    by_origin: dict[str, Counter] = field(default_factory=dict)   # formalgeo7k: origin -> {"built", "total"}
    out: str = ""
    rejects: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"written": self.written, "loaded": self.loaded, "rejected": sum(self.rejected.values()),
                "rejects_by_reason": dict(self.rejected.most_common()),
                "by_origin": {k: dict(v) for k, v in self.by_origin.items()}, "out": self.out,
                "rejects_file": self.rejects}


def rejects_path(out: Path) -> Path:
    return out.with_name(out.stem + ".rejects.jsonl")


def formalgeo_problem(record: ProblemRecord) -> dict[str, Any]:
    """The FormalGeo JSON fields the replay needs, back from a loaded record."""
    meta = record.meta
    return {"problem_id": meta["problem_id"], "construction_cdl": meta["construction_cdl"],
            "text_cdl": meta["text_cdl"], "image_cdl": meta["image_cdl"], "goal_cdl": meta["goal_cdl"],
            "problem_answer": record.answer, "theorem_seqs": meta["theorem_seqs"]}


def gdl_dir_for(path: Path) -> Path:
    for candidate in (path / "gdl", path.parent / "gdl", path.parent.parent / "gdl"):
        if (candidate / "theorem_GDL.json").is_file():
            return candidate
    raise FileNotFoundError(f"FormalGeo GDL (gdl/theorem_GDL.json) not found near {path}; the theorem build needs "
                            f"formalgeo7k_v1/gdl")


def attach_formalgeo_steps(records: list[ProblemRecord], gdl_dir: Path, options: BuildOptions, summary: BuildSummary,
                           reject, progress_file: Path | None = None) -> list[ProblemRecord]:
    """Replay every record's theorem sequence; keep those whose target is accepted, with steps and solution.
    Each outcome is also appended to `progress_file` as it arrives, so a long build can be watched (and
    summarised by bench/build_data.py --summarize) before it ends."""
    from training.formalgeo_targets import build_targets, reason_key

    by_pid = {record.meta["problem_id"]: record for record in records}
    accepted: dict[int, ProblemRecord] = {}
    progress = progress_file.open("w", encoding="utf-8") if progress_file else None
    try:
        problems = [formalgeo_problem(r) for r in records]
        if options.replay_order_seed is not None:
            import random

            random.Random(options.replay_order_seed).shuffle(problems)
        results = build_targets(problems, gdl_dir, bank_theorems(),
                                workers=options.workers, timeout=options.timeout, progress=options.progress)
        for result in results:
            record = by_pid[result.problem_id]
            origin = record.meta.get("origin", "?")
            if progress:
                progress.write(json.dumps({"id": record.id, "origin": origin, "ok": result.ok, "reason": result.reason,
                                           "status": result.statuses}, ensure_ascii=False) + "\n")
                progress.flush()
            counts = summary.by_origin.setdefault(origin, Counter())
            counts["total"] += 1
            if not result.ok:
                reject(record.id, "theorem target", result.reason, key=reason_key(result.reason))
                continue
            counts["built"] += 1
            counts["steps_verified"] += sum(1 for s in result.statuses if s == "verified")
            counts["steps"] += len(result.statuses)
            record.steps = [s.to_record() for s in result.steps]
            record.solution = result.plain
            record.meta["formalgeo_steps"] = [s.formalgeo for s in result.steps]
            record.meta["step_status"] = result.statuses
            accepted[result.problem_id] = record
    finally:
        if progress:
            progress.close()
    return [record for record in records if record.meta["problem_id"] in accepted]   # input order


@lru_cache(maxsize=1)
def bank_theorems() -> list[dict]:
    """The bank's theorems as plain dicts (worker processes get a copy). Read from the seed files through the
    bank's own validating loader: the same dicts Bank.all() returns, without building the SQLite store (and
    its embeddings), which a data build does not need."""
    from theorem_bank import load_seeds
    from theorem_bank.store import default_seed_dirs

    return load_seeds(default_seed_dirs())


def attach_teacher_steps(records: list[ProblemRecord], options: BuildOptions, reject) -> list[ProblemRecord]:
    """Records that have no steps are rewritten by the teacher; only accepted rewrites stay."""
    from training.teacher import rewrite

    needing = [r for r in records if not r.steps]
    report = rewrite(needing, options.teacher)
    for rejected in report.rejected:
        reject(rejected["id"], "teacher", rejected["reason"], key="teacher: " + rejected["reason"].split(":", 1)[0])
    rewritten = {r.id: r for r in report.accepted}
    return [rewritten.get(r.id, r) for r in records if r.steps or r.id in rewritten]


def render_targets(records: Iterable[ProblemRecord], target: str, options: BuildOptions, reject):
    from training.data.diversity import pick_instruction, shuffle_choices
    from training.targets import target_text

    for record in records:
        if options.shuffle_choices:
            record = shuffle_choices(record, options.seed)
        try:
            # training.targets is the one owner of a target's text (a FormalGeo plain target is the derivation
            # the builder wrote over the problem's objects); train.py reads what is written here.
            text = target_text(record, target)
        except ValueError as err:
            reject(record.id, "target", str(err), key=f"no {target} target")
            continue
        record.meta["target_kind"] = target
        record.meta["target"] = text
        if options.instructions:
            record.meta["instruction"] = pick_instruction(record, options.seed)
        yield record


def build(source: str, path: str | Path, target: str, out: str | Path, options: BuildOptions | None = None
          ) -> BuildSummary:
    options = options or BuildOptions()
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose from {SOURCES}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {TARGETS}")
    out = Path(out)
    rejects_file = rejects_path(out)
    rejects_file.parent.mkdir(parents=True, exist_ok=True)
    rejects_file.write_text("", encoding="utf-8")
    summary = BuildSummary(out=str(out), rejects=str(rejects_file))
    bad = BadRecords(skip=options.skip_bad, path=rejects_file)

    def reject(record_id: str, stage: str, reason: str, key: str | None = None) -> None:
        summary.rejected[key or reason] += 1
        with rejects_file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": record_id, "stage": stage, "reason": reason}, ensure_ascii=False) + "\n")

    loader_args = dict(options.loader)
    if source == "formalgeo7k":
        loader_args.update(split=options.split, text_only=options.text_only)
    elif source == "hf" and options.split:
        loader_args.update(split=options.split)
    elif source == "geoqa":
        loader_args.update(text_only=options.text_only)
    records = []
    for record in load(source, path, bad=bad, **loader_args):
        records.append(record)
        if options.limit and len(records) >= options.limit:
            break
    summary.loaded = len(records)
    summary.rejected["bad record"] += bad.count
    if not bad.count:
        del summary.rejected["bad record"]

    if source == "formalgeo7k" and (target != "answer" or options.matched):
        records = attach_formalgeo_steps(records, gdl_dir_for(Path(path)), options, summary, reject,
                                         progress_file=out.with_name(out.stem + ".progress.jsonl"))
    if options.teacher is not None and target == "theorem":
        records = attach_teacher_steps(records, options, reject)
    summary.written = write_records(render_targets(records, target, options, reject), out)
    return summary
