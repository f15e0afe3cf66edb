"""Any Hugging Face `datasets` dataset as records, given a column mapping.

`path` is a folder written by `save_to_disk`, a parquet/JSON/JSONL/CSV file or folder of them, or a hub id
(online only). `columns` maps record fields to dataset columns, e.g. {"question": "problem", "answer": "gt"};
unmapped fields use a column of the same name when present. Images (a PIL image, {"bytes"/"path"} dict or
a path string) are written to `image_dir` as PNG so that records stay plain JSON.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Iterator

from training.loaders.common import BadRecords, policy
from training.records import ProblemRecord, RecordError

FIELDS = ("id", "question", "answer", "choices", "answer_index", "image", "solution", "split", "knowledge_points")
FILE_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}


def parse_columns(pairs: list[str] | None) -> dict[str, str]:
    """['question=problem', 'answer=gt'] -> {'question': 'problem', 'answer': 'gt'} (CLI --column)."""
    mapping = {}
    for pair in pairs or []:
        field, sep, column = pair.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise ValueError(f"--column expects FIELD=COLUMN, got {pair!r}")
        if field.strip() not in FIELDS:
            raise ValueError(f"--column: unknown record field {field.strip()!r}; choose from {list(FIELDS)}")
        mapping[field.strip()] = column.strip()
    return mapping


def open_dataset(path: str | Path, split: str | None = None):
    """A datasets.Dataset from a saved folder, data files, or a hub id."""
    import datasets

    local = Path(path)
    if local.is_dir() and ((local / "dataset_info.json").exists() or (local / "dataset_dict.json").exists()
                           or (local / "state.json").exists()):
        data = datasets.load_from_disk(str(local))
    elif local.exists():
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.suffix in FILE_BUILDERS)
        if not files:
            raise FileNotFoundError(f"no parquet/json/jsonl/csv files under {local}")
        builder = FILE_BUILDERS.get(files[0].suffix)
        if builder is None:
            raise ValueError(f"{files[0]}: unsupported file type; use parquet, json, jsonl or csv")
        data = datasets.load_dataset(builder, data_files=[str(f) for f in files])
    else:
        data = datasets.load_dataset(str(path))  # hub id: needs network (offline machines fail here, loudly)
    if isinstance(data, datasets.DatasetDict):
        if split is None:
            if len(data) != 1:
                raise ValueError(f"{path} has splits {list(data)}; choose one with --split")
            split = next(iter(data))
        if split not in data:
            raise ValueError(f"{path} has no split {split!r}; it has {list(data)}")
        return data[split], split
    return data, split or "train"


def _save_image(value: Any, image_dir: Path, stem: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            data = value["bytes"]
        elif value.get("path"):
            return str(value["path"])
        else:
            return None
    else:  # a PIL image (datasets' Image feature decodes to PIL)
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        data = buffer.getvalue()
    image_dir.mkdir(parents=True, exist_ok=True)
    # Content-addressed, so reruns and duplicates write each picture once.
    target = image_dir / f"{stem}-{hashlib.sha1(data).hexdigest()[:12]}.png"
    if not target.exists():
        if isinstance(value, dict):
            from PIL import Image

            Image.open(io.BytesIO(data)).save(target, format="PNG")
        else:
            target.write_bytes(data)
    return str(target)


def load_hf(path: str | Path, *, columns: dict[str, str] | None = None, split: str | None = None,
            source: str = "hf", image_dir: str | Path | None = None,
            bad: BadRecords | None = None) -> Iterator[ProblemRecord]:
    bad = policy(bad)
    data, split_name = open_dataset(path, split)
    mapping = {field: (columns or {}).get(field, field) for field in FIELDS}
    if mapping["question"] not in data.column_names or mapping["answer"] not in data.column_names:
        raise ValueError(f"{path}: question/answer columns {mapping['question']!r}/{mapping['answer']!r} not in "
                         f"{data.column_names}; map them with --column question=COL --column answer=COL")
    image_root = Path(image_dir) if image_dir else Path("hf_images")
    for index, row in enumerate(data):
        where = f"{path}[{split_name}][{index}]"
        get = lambda field: row.get(mapping[field])  # noqa: E731 - local shorthand
        rid = str(get("id")) if get("id") is not None else f"{source}-{split_name}-{index}"
        try:
            choices = get("choices")
            if isinstance(choices, dict):  # {"A": "...", ...}
                choices = [str(choices[k]) for k in sorted(choices)]
            answer = get("answer")
            if answer is None or str(answer).strip() == "":
                raise RecordError("is missing or empty", where=where, record_id=rid, field_name="answer")
            answer_index = get("answer_index")
            if choices and answer_index is None and str(answer) in choices:
                answer_index = choices.index(str(answer))
            try:
                image = _save_image(get("image"), image_root, rid.replace("/", "_"))
            except Exception as err:  # a corrupt picture is a bad record, not a crash
                raise RecordError(f"image could not be decoded or saved ({err})", where=where, record_id=rid,
                                  field_name="image") from None
            question = get("question")
            if not isinstance(question, str) or not question.strip():
                raise RecordError("is missing or empty", where=where, record_id=rid, field_name="question")
            record = ProblemRecord(id=rid, source=source, split=str(get("split") or split_name), question=question.strip(),
                                   answer=str(answer).strip(), image=image, choices=list(choices) if choices else None,
                                   answer_index=answer_index, solution=get("solution"),
                                   knowledge_points=list(get("knowledge_points") or []),
                                   meta={"dataset": str(path), "row": index})
            record.validate(where=where)
            yield record
        except RecordError as err:
            bad.reject(err, raw={"row": index})
