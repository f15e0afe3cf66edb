"""MATH (Hendrycks) JSONL: the full test set {problem, level "Level 3", type, solution, idx} and MATH-500
{problem, solution, answer, subject, level 3, unique_id}. The answer is the `answer` field, else the last
\\boxed{...} (or \\fbox{...}) of the solution; subject and level are kept in meta and knowledge_points."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from training.loaders.common import BadRecords, policy, read_jsonl, require
from training.records import ProblemRecord, RecordError

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} / \\fbox{...} (nested braces balanced), or of `\\boxed 5`; None if absent."""
    starts = [m.end() for m in _BOX_RE.finditer(text)]
    for start in reversed(starts):
        if start < len(text) and text[start] == "{":
            depth = 0
            for pos in range(start, len(text)):
                if text[pos] == "{":
                    depth += 1
                elif text[pos] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[start + 1:pos].strip()
            continue  # unbalanced: try an earlier box
        bare = re.match(r"[^\s$]+", text[start:])  # "\boxed 5" form, rare but in the data
        if bare:
            return bare.group(0).rstrip(".,;").strip()
    return None


def _level(value, where: str, rid: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(?:Level\s*)?(\d+)\s*", str(value))
    if not match:
        # Upstream has a few "Level ?" entries; keep the record, the level is simply unknown.
        return None
    return int(match.group(1))


def load_math(path: str | Path, *, split: str = "test", source: str = "math",
              bad: BadRecords | None = None) -> Iterator[ProblemRecord]:
    bad = policy(bad)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MATH file not found: {path} (math/test.jsonl or math/math500_test.jsonl)")
    for line_index, (where, row) in enumerate(read_jsonl(path, bad)):
        uid = row.get("unique_id") or (f"{source}-{split}-{row['idx']}" if row.get("idx") is not None else
                                       f"{source}-{split}-{line_index}")
        rid = str(uid)
        try:
            problem = require(row, "problem", where, rid)
            solution = row.get("solution")
            if solution is not None and not isinstance(solution, str):
                raise RecordError("must be a string", where=where, record_id=rid, field_name="solution")
            answer = row.get("answer")
            if answer is None or not str(answer).strip():
                answer = last_boxed(solution or "")
                if answer is None:
                    raise RecordError("no `answer` field and no \\boxed{...} in the solution", where=where,
                                      record_id=rid, field_name="solution")
            subject = row.get("subject") or row.get("type")
            level = _level(row.get("level"), where, rid)
            meta = {"subject": subject, "level": level}
            if row.get("unique_id"):
                meta["unique_id"] = row["unique_id"]
            if row.get("idx") is not None:
                meta["idx"] = row["idx"]
            record = ProblemRecord(id=rid, source=source, split=split, question=problem.strip(), answer=str(answer).strip(),
                                   solution=solution, knowledge_points=[subject] if subject else [], meta=meta)
            record.validate(where=where)
            yield record
        except RecordError as err:
            bad.reject(err, raw=row)
