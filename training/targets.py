"""The three matched training targets of a problem record: theorem steps, plain derivation, answer only.

All three end with the same Answer line, so Theorem-SFT and its controls differ only in what comes
before it. Works on any ProblemRecord (synthetic, FormalGeo7k, GeoQA): steps are
{theorem, cond, map, exec} dicts in the v1 format (DESIGN.md).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


from model import choices
from model.solution_format import Solution, Step, render
from theorem_bank.safe_math import name_of
from training.records import ProblemRecord

KINDS = ("theorem", "plain", "answer")
@lru_cache(maxsize=1)
def _core_theorems() -> dict[str, dict]:
    from theorem_bank.schema import core_theorems

    return core_theorems()


def theorem_name(theorem_id: str, bank: Any = None) -> str:
    """The display name of a theorem: from the bank when given, else from geometry_core.yaml ("" if unknown)."""
    if bank is not None:
        theorem = bank.get(theorem_id)
        return (theorem or {}).get("name", "")
    return _core_theorems().get(theorem_id, {}).get("name", "")


def theorem_roles(theorem_id: str, bank: Any = None) -> set[str]:
    """The role names of a theorem: from the bank when given and it knows the theorem, else from
    geometry_core.yaml (whose roles are a contract); empty when neither knows it."""
    theorem = bank.get(theorem_id) if bank is not None and theorem_id else None
    if theorem is None:
        theorem = _core_theorems().get(theorem_id)
    return set((theorem or {}).get("roles") or ())


def answer_value(record: ProblemRecord) -> str:
    """What follows "Answer:": the value, plus the choice letter when the record has choices."""
    return choices.answer_value(record.answer, choices.record_letter(record))


def answer_line(record: ProblemRecord) -> str:
    return choices.answer_line(record.answer, choices.record_letter(record))


def theorem_text(record: ProblemRecord, bank: Any = None) -> str:
    if not record.steps:
        raise ValueError(f"record {record.id!r}: field 'steps' is empty, so it has no theorem target; "
                         "build steps first or use kind='plain'/'answer'")
    steps = [Step.from_record(s, name=theorem_name(s["theorem"], bank)) for s in record.steps]
    return render(Solution(steps=steps, answer=answer_value(record)))


def _map_entries(map_text: str, roles: set[str]) -> list[tuple[str | None, str | None, str | None]]:
    """(role, object, value) from "role = object = value; role = object; role = value; object = value".
    A two-part entry whose right side is a value binds a role only when its left side is one of the
    theorem's `roles`; otherwise the left side is an object of the problem ("AB = 120") and stays a name."""
    entries = []
    for entry in re.split(r"[;；]", map_text or ""):
        parts = [p.strip() for p in entry.split("=")]
        if len(parts) < 2 or not parts[0]:
            continue
        if len(parts) >= 3:
            entries.append((parts[0], parts[1], parts[-1]))
        elif _is_object(parts[1]):
            entries.append((parts[0], parts[1], None))
        elif parts[0] in roles:
            entries.append((parts[0], None, parts[1]))
        else:
            entries.append((None, parts[0], parts[1]))
    return entries


def _is_object(text: str) -> bool:
    """A name rather than a value: ∠ABC, △ABC, AB, or any single name the expression grammar reads (x, area_ABC)."""
    return bool(re.match(r"^(?:[∠⌒△]|[A-Z][A-Z0-9']*$)", text)) or name_of(text) is not None


def _replace_roles(text: str, replacements: list[tuple[str, str]]) -> str:
    # longer role names first, so "angle1" is not half-replaced through "angle"
    for role, replacement in sorted(replacements, key=lambda r: -len(r[0])):
        text = re.sub(rf"(?<![\w∠⌒]){re.escape(role)}(?![\w])", lambda _m, r=replacement: r, text)
    return text


def plain_step(step: dict, bank: Any = None) -> str:
    """One step as an ordinary derivation line: the relation over the problem's objects, the values
    used, and the result ("∠GHD + ∠GHC = 180°, ∠GHD = 50°, so ∠GHC = 130°."). An Exec without '=>'
    (a relation or fact with no conclusion) becomes the relation and the values used."""
    relation, arrow, result = (step.get("exec") or "").partition("=>")
    entries = _map_entries(step.get("map", ""), theorem_roles(step.get("theorem", ""), bank))
    to_object = [(role, obj) for role, obj, _ in entries if role and obj]
    to_value = [(role, value) for role, obj, value in entries if role and value and not obj]
    relation = _replace_roles(relation, to_object + to_value)
    used = [f"{obj} = {value}" for _, obj, value in entries if obj and value]
    relation = ", ".join(r.strip() for r in relation.split(";") if r.strip())
    line = ", ".join(filter(None, [relation] + used))
    if arrow:
        # a conclusion names the role's object, never its value: "=> n = 6" must not read "6 = 6"
        return f"{line}, so {_replace_roles(result, to_object).strip()}."
    return line if line.endswith(".") or not line else f"{line}."


def plain_derivation(steps: list[dict], bank: Any = None) -> str:
    return "\n".join(plain_step(s, bank) for s in steps)


def plain_text(record: ProblemRecord, bank: Any = None) -> str:
    """The worked derivation and the Answer line. The record's own solution comes first (the curriculum and
    the FormalGeo builder write it over the problem's objects); steps are rendered only when it is unset."""
    if record.solution and record.solution.strip():
        body = record.solution.strip()
    elif record.steps:
        body = plain_derivation(record.steps, bank)
    else:
        raise ValueError(f"record {record.id!r}: neither 'steps' nor 'solution' is set, so it has no plain target")
    return f"{body}\n{answer_line(record)}"


def record_target(record: ProblemRecord, kind: str, bank: Any = None) -> str:
    """What train.py supervises: the target `python -m training.data build` rendered into the record
    (meta["target"]) when it is of this kind, else the same rendering done now."""
    meta = record.meta or {}
    if meta.get("target_kind") == kind and isinstance(meta.get("target"), str) and meta["target"].strip():
        return meta["target"]
    return target_text(record, kind, bank)


def target_text(record: ProblemRecord, kind: str, bank: Any = None) -> str:
    """The training target of `kind` ("theorem", "plain" or "answer") for a record."""
    if kind == "theorem":
        return theorem_text(record, bank)
    if kind == "plain":
        return plain_text(record, bank)
    if kind == "answer":
        return answer_line(record)
    raise ValueError(f"unknown target kind {kind!r}; expected one of {KINDS}")
