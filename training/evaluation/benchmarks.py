"""Which records a benchmark name and a --data path stand for, and which grading mode applies.

The loaders (training/loaders) own the formats; this module only picks the loader, the split and the
order, so that the same command always evaluates the same problems in the same order.
"""
from __future__ import annotations

from pathlib import Path

from training.evaluation.errors import EvaluationError
from training.records import ProblemRecord

# records: a user's own JSONL of problem records (training/records.py); choice mode grades the letter where a
# record has choices and the value where it has none.
DEFAULT_MODE = {"geoqa": "choice", "formalgeo": "direct", "math": "direct", "synthetic": "choice", "records": "choice"}
SYNTHETIC_EVAL_SPLITS = ("test_iid", "test_surface", "test_compose", "test_numbers")


def _synthetic_files(path: Path, split: str | None) -> list[Path]:
    if path.is_file():
        return [path]
    if split:
        names = [split]
    else:
        present = {p.stem for p in path.glob("*.jsonl")}
        names = [s for s in SYNTHETIC_EVAL_SPLITS if s in present] or sorted(n for n in present if n != "train")
    files = [path / f"{name}.jsonl" for name in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        raise EvaluationError(f"no synthetic split file(s) {missing or '(none)'} under {path}; "
                         f"write the curriculum with `python -m training.synthetic --out {path}`")
    return files


def load_benchmark(benchmark: str, data: str | Path, *, limit: int | None = None, split: str | None = None,
                   text_only: bool = False) -> list[ProblemRecord]:
    """Records of a benchmark in dataset order; `limit` keeps the first N (per split for a synthetic folder)."""
    from training import loaders

    path = Path(data)
    if not path.exists():
        raise EvaluationError(f"--data {path} does not exist (the shared data lives in $THEOREM_TUTOR_DATA or ../shared/data)")
    if benchmark == "geoqa":
        records = list(loaders.load_geoqa(path, text_only=text_only))
    elif benchmark == "formalgeo":
        records = list(loaders.load_formalgeo(path, split=split, text_only=text_only))
    elif benchmark == "math":
        records = list(loaders.load_math(path))
    elif benchmark == "records":
        if not path.is_file():
            raise EvaluationError(f"--benchmark records reads one JSONL file of problem records; {path} is a folder")
        records = [_absolute_image(r, path.parent, text_only) for r in loaders.load_records(path)]
    elif benchmark == "synthetic":
        records = []
        for file in _synthetic_files(path, split):
            part = [_absolute_image(r, file.parent, text_only) for r in loaders.load_records(file)]
            records.extend(part[:limit] if limit is not None else part)
        return _unique(records, path)
    else:
        raise EvaluationError(f"unknown benchmark {benchmark!r}; choose one of {sorted(DEFAULT_MODE)}")
    return _unique(records[:limit] if limit is not None else records, path)


def _absolute_image(record: ProblemRecord, root: Path, text_only: bool) -> ProblemRecord:
    """Curriculum records name their diagram relative to the split file's folder."""
    if text_only:
        record.image = None
    elif record.image and not Path(record.image).is_absolute():
        record.image = str((root / record.image).resolve())
    return record


def _unique(records: list[ProblemRecord], path: Path) -> list[ProblemRecord]:
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise EvaluationError(f"{path}: record id {record.id!r} appears twice; predictions are keyed by id")
        seen.add(record.id)
    return records
