"""What every loader shares: where the real data lives, bad-record handling, and small readers."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from training.records import RecordError

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The third-party data folder: $THEOREM_TUTOR_DATA, else <repo>/../shared/data."""
    return Path(os.environ.get("THEOREM_TUTOR_DATA", REPO.parent / "shared" / "data"))


@dataclass
class BadRecords:
    """Policy for bad records. Strict (the default) raises the first error; with skip=True each bad
    record is counted, kept with its reason, and appended to `path` (a JSONL rejects file) when given."""

    skip: bool = False
    path: Path | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, error: RecordError, raw: Any = None) -> None:
        if not self.skip:
            raise error
        entry = {"where": error.where, "id": error.record_id, "field": error.field_name, "reason": str(error)}
        if raw is not None:
            entry["raw"] = raw if isinstance(raw, (dict, list, str, int, float)) else repr(raw)
        self.rejected.append(entry)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with Path(self.path).open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    @property
    def count(self) -> int:
        return len(self.rejected)


STRICT = None  # loaders treat bad=None as "raise on the first bad record"


def policy(bad: BadRecords | None) -> BadRecords:
    return bad if bad is not None else BadRecords(skip=False)


def read_jsonl(path: Path, bad: BadRecords) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (where, object) for each non-blank line; unparseable lines go through the bad-record policy."""
    with Path(path).open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                bad.reject(RecordError(f"not valid JSON ({err.msg} at column {err.colno})", where=where), raw=line[:500])
                continue
            if not isinstance(data, dict):
                bad.reject(RecordError(f"expected a JSON object, got {type(data).__name__}", where=where), raw=line[:500])
                continue
            yield where, data


def require(data: dict[str, Any], key: str, where: str, record_id: str | None, kind: type | tuple = str) -> Any:
    """The value of a required field, or a RecordError naming the field and what was expected."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError("is missing or empty", where=where, record_id=record_id, field_name=key)
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise RecordError(f"must be {names}, got {type(value).__name__}", where=where, record_id=record_id,
                          field_name=key)
    return value
