"""FormalGeo7k v1: a folder of problem JSON files or `problems_all.jsonl`, a diagrams folder, and the split file.

Each record keeps the formal annotation (construction/text/image/goal CDL, theorem_seqs) in `meta`, which the
theorem-target builder (training/formalgeo_targets.py) replays. `meta["origin"]` is the upstream source family:
GeoQA, GeoQA-angle or Geometry3k (from the `source` field, e.g. "Geometry3k-2401").
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from training.loaders.common import BadRecords, policy, read_jsonl, require
from training.records import ProblemRecord, RecordError

SPLIT_FILE = "problem_split_3_1_1_619.json"
FORMAL_FIELDS = ("construction_cdl", "text_cdl", "image_cdl", "goal_cdl", "theorem_seqs")


def origin_of(source: str) -> str:
    """'GeoQA-0' -> 'GeoQA', 'GeoQA-angle-12' -> 'GeoQA-angle', 'Geometry3k-2401' -> 'Geometry3k'."""
    head, _, _ = source.rpartition("-")
    return head or source


def read_split(path: Path) -> dict[int, str]:
    """problem_id -> 'train' | 'val' | 'test' from the FormalGeo split file ({"split": {"train": [ids], ...}})."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {int(pid): name for name, ids in data["split"].items() for pid in ids}
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise RecordError(f"not a FormalGeo split file ({{'split': {{'train': [...], 'val': [...], 'test': [...]}}}}): "
                          f"{err}", where=str(path)) from None


def _locate(path: Path) -> tuple[list[Path], Path]:
    """The problem source files and the dataset root for a file or folder argument."""
    if path.is_file():
        return [path], path.parent
    if (path / "problems_all.jsonl").is_file():
        return [path / "problems_all.jsonl"], path
    for folder in (path / "problems", path):
        files = sorted(folder.glob("*.json"), key=lambda p: (len(p.stem), p.stem))
        files = [f for f in files if f.stem.isdigit()]
        if files:
            root = folder.parent if folder.name == "problems" else folder
            return files, root
    raise FileNotFoundError(f"no FormalGeo problems under {path}: expected problems_all.jsonl, problems/<pid>.json "
                            f"or <pid>.json files")


def _find_diagrams(root: Path) -> Path | None:
    for candidate in (root / "diagrams", root / "test" / "diagrams", root.parent / "diagrams"):
        if candidate.is_dir():
            return candidate
    return None


def _split_file(root: Path) -> Path | None:
    for candidate in (root / SPLIT_FILE, root.parent / SPLIT_FILE, root.parent.parent / SPLIT_FILE):
        if candidate.is_file():
            return candidate
    return None


def _rows(files: list[Path], bad: BadRecords) -> Iterator[tuple[str, dict[str, Any]]]:
    for file in files:
        if file.suffix == ".jsonl":
            yield from read_jsonl(file, bad)
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            bad.reject(RecordError(f"not valid JSON ({err})", where=str(file)))
            continue
        yield str(file), data


def load_formalgeo(path: str | Path, *, split: str | None = None, split_file: str | Path | None = None,
                   diagrams: str | Path | None = None, text_only: bool = False,
                   bad: BadRecords | None = None) -> Iterator[ProblemRecord]:
    """FormalGeo7k problems as records, in file order.

    split: keep only 'train'/'val'/'test' (needs the split file; found next to the data or given as split_file).
    Images: `diagrams/<problem_img>`; a missing diagram is an error naming the problem and path unless `text_only`
    (upstream ships diagrams for the test split only, so full builds are text-only).
    """
    bad = policy(bad)
    files, root = _locate(Path(path))
    split_path = Path(split_file) if split_file else _split_file(root)
    split_of = read_split(split_path) if split_path else {}
    if split and not split_of:
        raise FileNotFoundError(f"split {split!r} asked for but no split file found near {root}; pass --split-file "
                                f"PATH ({SPLIT_FILE})")
    diagram_dir = Path(diagrams) if diagrams else _find_diagrams(root)
    for where, row in _rows(files, bad):
        rid = f"formalgeo7k-{row.get('problem_id')}"
        try:
            pid = require(row, "problem_id", where, rid, int)
            record_split = split_of.get(pid, "all" if not split_of else "")
            if not record_split:
                raise RecordError(f"problem {pid} is in none of the splits of {split_path}", where=where, record_id=rid,
                                  field_name="problem_id")
            if split and record_split != split:
                continue
            question = require(row, "problem_text_en", where, rid)
            answer = str(require(row, "problem_answer", where, rid, (str, int, float)))
            source = require(row, "source", where, rid)
            for name in FORMAL_FIELDS:
                require(row, name, where, rid, str if name == "goal_cdl" else list)
            image = None
            if not text_only:
                image_name = require(row, "problem_img", where, rid)
                image_path = (diagram_dir / image_name) if diagram_dir else Path(root / "diagrams" / image_name)
                if not image_path.is_file():
                    raise RecordError(f"diagram {image_path} does not exist; upstream ships diagrams for the test "
                                      f"split only, so use --split test or build --text-only", where=where,
                                      record_id=rid, field_name="problem_img")
                image = str(image_path.resolve())
            meta = {name: row[name] for name in FORMAL_FIELDS}
            meta.update(problem_id=pid, origin=origin_of(source), source_id=source,
                        level=row.get("problem_level"), problem_text_cn=row.get("problem_text_cn"))
            record = ProblemRecord(id=rid, source="formalgeo7k", split=record_split, question=question.strip(),
                                   answer=answer.strip(), image=image, knowledge_points=[], meta=meta)
            record.validate(where=where)
            yield record
        except RecordError as err:
            bad.reject(err, raw={k: row.get(k) for k in ("problem_id", "source")})
