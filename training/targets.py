"""The three matched training targets of a problem record: theorem steps, plain derivation, answer only.

All three end with the same Answer line, so Theorem-SFT and its controls differ only in what comes
before it. Works on any ProblemRecord (synthetic, FormalGeo7k, GeoQA): steps are
{theorem, cond, map, exec} dicts in the v1 format (DESIGN.md).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from model.solution_format import Solution, Step, render
from training.records import ProblemRecord

KINDS = ("theorem", "plain", "answer")
LETTERS = "ABCDEFGHIJ"
CORE_THEOREMS = Path(__file__).resolve().parents[1] / "theorem_bank" / "seeds" / "geometry_core.yaml"


@lru_cache(maxsize=1)
def _core_names() -> dict[str, str]:
    with CORE_THEOREMS.open(encoding="utf-8") as fh:
        return {t["id"]: t["name"] for t in yaml.safe_load(fh)}


def theorem_name(theorem_id: str, bank: Any = None) -> str:
    """The display name of a theorem: from the bank when given, else from geometry_core.yaml ("" if unknown)."""
    if bank is not None:
        theorem = bank.get(theorem_id)
        return (theorem or {}).get("name", "")
    return _core_names().get(theorem_id, "")


def answer_value(record: ProblemRecord) -> str:
    """What follows "Answer:": the value, plus the choice letter when the record has choices."""
    if record.choices and record.answer_index is not None:
        return f"{record.answer} ({LETTERS[record.answer_index]})"
    return record.answer


def answer_line(record: ProblemRecord) -> str:
    return f"Answer: {answer_value(record)}"


def theorem_text(record: ProblemRecord, bank: Any = None) -> str:
    if not record.steps:
        raise ValueError(f"record {record.id!r}: field 'steps' is empty, so it has no theorem target; "
                         "build steps first or use kind='plain'/'answer'")
    steps = [Step.from_record(s, name=theorem_name(s["theorem"], bank)) for s in record.steps]
    return render(Solution(steps=steps, answer=answer_value(record)))


def _map_entries(map_text: str) -> list[tuple[str, str | None, str | None]]:
    """(role, object, value) from "role = object = value; role = object; role = value"."""
    entries = []
    for entry in re.split(r"[;；]", map_text or ""):
        parts = [p.strip() for p in entry.split("=")]
        if len(parts) < 2 or not parts[0]:
            continue
        role = parts[0]
        if len(parts) >= 3:
            entries.append((role, parts[1], parts[-1]))
        elif _is_object(parts[1]):
            entries.append((role, parts[1], None))
        else:
            entries.append((role, None, parts[1]))
    return entries


def _is_object(text: str) -> bool:
    return bool(re.match(r"^(?:[∠⌒△]|[A-Z][A-Z0-9']*$)", text))


def plain_step(step: dict) -> str:
    """One step as an ordinary derivation line: the relation over the problem's objects, the values
    used, and the result ("∠GHD + ∠GHC = 180°, ∠GHD = 50°, so ∠GHC = 130°.")."""
    relation, arrow, result = (step.get("exec") or "").partition("=>")
    if not arrow:
        return (step.get("exec") or "").strip()
    entries = _map_entries(step.get("map", ""))
    # longer role names first, so "angle1" is not half-replaced through "angle"
    for role, obj, value in sorted(entries, key=lambda e: -len(e[0])):
        replacement = obj or value
        if replacement:
            relation = re.sub(rf"(?<![\w∠⌒]){re.escape(role)}(?![\w])", lambda _m, r=replacement: r, relation)
    used = [f"{obj} = {value}" for _, obj, value in entries if obj and value]
    relation = ", ".join(r.strip() for r in relation.split(";") if r.strip())
    return ", ".join([relation] + used) + f", so {result.strip()}."


def plain_derivation(steps: list[dict]) -> str:
    return "\n".join(plain_step(s) for s in steps)


def plain_text(record: ProblemRecord) -> str:
    if record.steps:
        body = plain_derivation(record.steps)
    elif record.solution:
        body = record.solution.strip()
    else:
        raise ValueError(f"record {record.id!r}: neither 'steps' nor 'solution' is set, so it has no plain target")
    return f"{body}\n{answer_line(record)}"


def target_text(record: ProblemRecord, kind: str, bank: Any = None) -> str:
    """The training target of `kind` ("theorem", "plain" or "answer") for a record."""
    if kind == "theorem":
        return theorem_text(record, bank)
    if kind == "plain":
        return plain_text(record)
    if kind == "answer":
        return answer_line(record)
    raise ValueError(f"unknown target kind {kind!r}; expected one of {KINDS}")
