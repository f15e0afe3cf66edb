"""The problem record: the one shape every loader yields (see DESIGN.md, "The problem record").

Loaders for GeoQA, FormalGeo7k, MATH, the synthetic curriculum and our own JSONL all produce
`ProblemRecord`s; a bad record raises `RecordError` naming where it came from and which field.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

STEP_KEYS = ("theorem", "cond", "map", "exec")


class RecordError(ValueError):
    """A record that does not fit the schema. The message names file, record id or line, and field."""

    def __init__(self, message: str, *, where: str = "", record_id: str | None = None, field_name: str | None = None):
        parts = [p for p in (where, f"record {record_id!r}" if record_id else "", f"field {field_name!r}" if field_name else "") if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)
        self.where, self.record_id, self.field_name = where, record_id, field_name


@dataclass
class ProblemRecord:
    id: str
    source: str
    split: str
    question: str
    answer: str
    image: str | None = None
    choices: list[str] | None = None
    answer_index: int | None = None
    knowledge_points: list[str] = field(default_factory=list)
    program: list[str] | None = None
    numbers: list[float] | None = None
    solution: str | None = None
    steps: list[dict[str, str]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "") -> "ProblemRecord":
        """Build and validate a record from plain data (e.g. one JSONL line)."""
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object, got {type(data).__name__}", where=where)
        record_id = str(data.get("id")) if data.get("id") is not None else None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecordError(f"unknown field(s) {unknown}; allowed: {sorted(known)}", where=where, record_id=record_id,
                              field_name=unknown[0])
        for required in ("id", "source", "split", "question", "answer"):
            if data.get(required) in (None, ""):
                raise RecordError("is required and must be a non-empty string", where=where, record_id=record_id,
                                  field_name=required)
        record = cls(**{k: v for k, v in data.items()})
        record.validate(where=where)
        return record

    def validate(self, *, where: str = "") -> None:
        def fail(field_name: str, message: str) -> None:
            raise RecordError(message, where=where, record_id=self.id, field_name=field_name)

        for name in ("id", "source", "split", "question", "answer"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                fail(name, "must be a non-empty string")
        if self.image is not None and not isinstance(self.image, str):
            fail("image", "must be a path string or null")
        if self.choices is not None:
            if not isinstance(self.choices, list) or not all(isinstance(c, str) for c in self.choices) or len(self.choices) < 2:
                fail("choices", "must be null or a list of at least two strings")
        if self.answer_index is not None:
            if self.choices is None:
                fail("answer_index", "is set but there are no choices")
            if not isinstance(self.answer_index, int) or not 0 <= self.answer_index < len(self.choices):
                fail("answer_index", f"must be an index into the {len(self.choices)} choices")
        if not isinstance(self.knowledge_points, list):
            fail("knowledge_points", "must be a list")
        if self.numbers is not None and not all(isinstance(n, (int, float)) for n in self.numbers):
            fail("numbers", "must be a list of numbers")
        if self.steps is not None:
            if not isinstance(self.steps, list):
                fail("steps", "must be null or a list of {theorem, cond, map, exec}")
            for i, step in enumerate(self.steps):
                if not isinstance(step, dict) or set(step) - set(STEP_KEYS) or "theorem" not in step:
                    fail("steps", f"step {i} must be an object with keys {list(STEP_KEYS)}")
        if not isinstance(self.meta, dict):
            fail("meta", "must be an object")


def read_records(path: str | Path) -> Iterator[ProblemRecord]:
    """Yield records from our own JSONL; the error for a bad line names the file and line number."""
    path = Path(path)
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise RecordError(f"not valid JSON ({err.msg} at column {err.colno})", where=where) from None
            yield ProblemRecord.from_dict(data, where=where)


def write_records(records, path: str | Path) -> int:
    """Write records as JSONL atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.to_dict() if isinstance(record, ProblemRecord) else record, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count
