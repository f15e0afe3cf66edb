"""Our own record JSONL (training/records.py schema), with the shared bad-record policy."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from training.loaders.common import BadRecords, policy, read_jsonl
from training.records import ProblemRecord, RecordError


def load_records(path: str | Path, *, bad: BadRecords | None = None) -> Iterator[ProblemRecord]:
    bad = policy(bad)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"record file not found: {path}")
    for where, row in read_jsonl(path, bad):
        try:
            yield ProblemRecord.from_dict(row, where=where)
        except (RecordError, TypeError) as err:
            error = err if isinstance(err, RecordError) else RecordError(str(err), where=where)
            bad.reject(error, raw=row)
