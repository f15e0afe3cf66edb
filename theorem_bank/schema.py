"""The theorem schema: loading seed YAML files and validating every entry before it reaches the store.

Validation is all-or-nothing per file: `validate_theorems` returns every problem it finds (entry id,
field, what is wrong), so a caller can refuse a whole file and say exactly what to fix.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import yaml

DOMAINS = (
    "geometry",
    "algebra",
    "intermediate_algebra",
    "prealgebra",
    "number_theory",
    "counting_probability",
    "precalculus",
)
UNITS = ("degree", "radian", "length", "area", "volume", "count", "ratio", "number", "probability")
REQUIRED = ("id", "name", "domain", "topic", "statement", "conditions", "roles", "relations", "aliases", "keywords", "examples")
ALIAS_KINDS = ("en", "zh", "formalgeo")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
ROLE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SEEDS_DIR = Path(__file__).resolve().parent / "seeds"

# Numeric tolerance for "the example satisfies the relation": examples hold exact values or short
# decimals such as 0.5, so a relative 1e-6 separates rounding from a wrong formula.
TOLERANCE = 1e-6


# Symbolic checks cost milliseconds per entry; a process remembers the verdict for an unchanged entry.
_MATH_CHECKED: dict[str, list[str]] = {}


class TheoremError(ValueError):
    """A seed file or theorem entry is malformed; the message names the file, entry and field."""


def load_yaml_file(path: str | Path) -> list[dict]:
    """Read one seed file: a YAML list of theorem mappings."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TheoremError(f"{path}: not valid YAML ({exc}); fix the syntax and retry") from exc
    except OSError as exc:
        raise TheoremError(f"{path}: cannot read ({exc.strerror})") from exc
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise TheoremError(f"{path}: expected a YAML list of theorem mappings (each entry starts with '- id: ...')")
    return data


def seed_files(dirs) -> list[Path]:
    files: list[Path] = []
    for directory in dirs:
        directory = Path(directory)
        if directory.is_dir():
            files.extend(sorted(directory.glob("*.yaml")))
    return files


def normalize_theorem(entry: dict) -> dict:
    """Fill optional parts with their empty forms so every stored theorem has the same keys."""
    theorem = dict(entry)
    aliases = dict(theorem.get("aliases") or {})
    theorem["aliases"] = {kind: [str(a) for a in (aliases.get(kind) or [])] for kind in ALIAS_KINDS}
    theorem["conditions"] = [str(c) for c in theorem.get("conditions") or []]
    theorem["keywords"] = [str(k) for k in theorem.get("keywords") or []]
    theorem["relations"] = [str(r) for r in theorem.get("relations") or []]
    roles = theorem.get("roles") or {}
    theorem["roles"] = {
        str(name): {"meaning": str((spec or {}).get("meaning", "")), "unit": str((spec or {}).get("unit", ""))}
        for name, spec in roles.items()
    } if isinstance(roles, dict) else roles
    return theorem


def _check_shape(entry: dict, where: str) -> list[str]:
    problems = []
    for key in REQUIRED:
        if key not in entry:
            problems.append(f"{where}: field '{key}' is missing")
    unknown = sorted(set(entry) - set(REQUIRED))
    if unknown:
        problems.append(f"{where}: unknown field(s) {unknown}; allowed: {list(REQUIRED)}")
    if problems:
        return problems
    if not isinstance(entry["id"], str) or not ID_PATTERN.match(entry["id"]):
        problems.append(f"{where}: field 'id' must be snake_case (a-z, 0-9, _), got {entry['id']!r}")
    for key in ("name", "topic", "statement"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            problems.append(f"{where}: field '{key}' must be a non-empty string")
    if entry["domain"] not in DOMAINS:
        problems.append(f"{where}: field 'domain' is {entry['domain']!r}; use one of {list(DOMAINS)}")
    for key in ("conditions", "relations", "keywords"):
        value = entry[key]
        # YAML reads a bare keyword such as 180 as a number; keywords accept any scalar.
        scalar = (str, int, float) if key == "keywords" else (str,)
        if not isinstance(value, list) or not all(isinstance(v, scalar) and str(v).strip() for v in value):
            problems.append(f"{where}: field '{key}' must be a list of non-empty strings")
    if isinstance(entry["relations"], list) and not entry["relations"]:
        problems.append(f"{where}: field 'relations' is empty; a theorem needs at least one relation")
    roles = entry["roles"]
    if not isinstance(roles, dict) or not roles:
        problems.append(f"{where}: field 'roles' must be a non-empty mapping role -> {{meaning, unit}}")
    else:
        for name, spec in roles.items():
            if not isinstance(name, str) or not ROLE_PATTERN.match(name):
                problems.append(f"{where}: field 'roles': role name {name!r} is not an identifier")
            if not isinstance(spec, dict) or not spec.get("meaning") or spec.get("unit") not in UNITS:
                problems.append(
                    f"{where}: field 'roles.{name}' needs a 'meaning' and a 'unit' from {list(UNITS)}, got {spec!r}"
                )
    aliases = entry["aliases"]
    if not isinstance(aliases, dict) or set(aliases) - set(ALIAS_KINDS):
        problems.append(f"{where}: field 'aliases' must be a mapping with keys among {list(ALIAS_KINDS)}")
    else:
        for kind, names in aliases.items():
            if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
                problems.append(f"{where}: field 'aliases.{kind}' must be a list of strings")
    examples = entry["examples"]
    if not isinstance(examples, list) or not examples or not all(isinstance(e, dict) for e in examples):
        problems.append(f"{where}: field 'examples' must be a non-empty list of {{role: value}} mappings")
    return problems


def _check_math(entry: dict, where: str) -> list[str]:
    """Relations parse with the safe parser, use only declared roles, and every example satisfies them."""
    from theorem_bank.safe_math import MathError, parse_relation, symbol_for, to_sympy

    problems = []
    role_symbols = {symbol_for(name): name for name in entry["roles"]}
    equations = []
    for i, relation in enumerate(entry["relations"]):
        try:
            eqs = parse_relation(relation)
        except MathError as exc:
            problems.append(f"{where}: field 'relations[{i}]' does not parse ({exc}): {relation!r}")
            continue
        stray = {str(s) for eq in eqs for s in eq.free_symbols if s not in role_symbols}
        if stray:
            problems.append(f"{where}: field 'relations[{i}]' uses {sorted(stray)}, which are not declared roles")
            continue
        equations.extend((i, eq) for eq in eqs)
    for j, example in enumerate(entry["examples"]):
        values = {}
        for role, raw in example.items():
            if role not in entry["roles"]:
                problems.append(f"{where}: field 'examples[{j}]' binds {role!r}, which is not a declared role")
                continue
            try:
                values[symbol_for(role)] = to_sympy(str(raw))
            except MathError as exc:
                problems.append(f"{where}: field 'examples[{j}].{role}' is not a value ({exc}): {raw!r}")
        for i, eq in equations:
            missing = {role_symbols[s] for s in eq.free_symbols} - set(example)
            if missing:
                problems.append(f"{where}: field 'examples[{j}]' leaves {sorted(missing)} unbound in relations[{i}]")
                continue
            try:
                # xreplace: a plain symbol-for-value swap, far cheaper than subs for these trees.
                lhs = complex(eq.lhs.xreplace(values).evalf(30))
                rhs = complex(eq.rhs.xreplace(values).evalf(30))
            except (TypeError, ValueError, ZeroDivisionError) as exc:
                problems.append(f"{where}: field 'examples[{j}]' cannot evaluate relations[{i}] ({exc})")
                continue
            if abs(lhs - rhs) > TOLERANCE * max(1.0, abs(lhs), abs(rhs)):
                problems.append(
                    f"{where}: field 'examples[{j}]' does not satisfy relations[{i}] "
                    f"{entry['relations'][i]!r}: left side {lhs.real:.6g}, right side {rhs.real:.6g}"
                )
    return problems


def safe_math_available() -> bool:
    try:
        import theorem_bank.safe_math  # noqa: F401
    except ImportError:
        return False
    return True


def validate_theorems(entries: list[dict], source: str = "<input>", known_ids=(), known_formalgeo=None) -> list[str]:
    """Every problem with these entries, as 'file: entry id: field ...' lines; empty when all is well.

    `known_ids` are ids already in the bank (an addition must not reuse them); `known_formalgeo` maps
    FormalGeo names already claimed to their theorem id (a FormalGeo name maps to exactly one theorem).
    """
    problems: list[str] = []
    seen = set(known_ids)
    claimed = dict(known_formalgeo or {})
    check_math = safe_math_available()
    for index, entry in enumerate(entries):
        ident = entry.get("id") if isinstance(entry, dict) else None
        where = f"{source}: entry {index + 1} (id {ident!r})"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        shape = _check_shape(entry, where)
        problems.extend(shape)
        if ident in seen:
            problems.append(f"{where}: field 'id' duplicates an existing theorem id; choose a new id")
        seen.add(ident)
        aliases = entry.get("aliases") if isinstance(entry.get("aliases"), dict) else {}
        for name in aliases.get("formalgeo") or []:
            if name in claimed and claimed[name] != ident:
                problems.append(
                    f"{where}: field 'aliases.formalgeo' lists {name!r}, already mapped to {claimed[name]!r}"
                )
            claimed[name] = ident
        if not shape and check_math:
            key = where + json.dumps(entry, sort_keys=True, default=str)
            if key not in _MATH_CHECKED:
                _MATH_CHECKED[key] = _check_math(entry, where)
            problems.extend(_MATH_CHECKED[key])
    return problems


_VALIDATED: dict[str, list[dict]] = {}


def load_seeds(dirs=(SEEDS_DIR,)) -> list[dict]:
    """All theorems of the seed directories, validated; raises TheoremError listing every problem.

    Symbolic validation takes seconds, so a process remembers which exact file contents passed.
    """
    files = seed_files(dirs)
    key = hashlib.sha256(b"".join(str(p).encode() + b"\0" + p.read_bytes() for p in files)).hexdigest()
    if key in _VALIDATED:
        return copy.deepcopy(_VALIDATED[key])
    theorems: list[dict] = []
    problems: list[str] = []
    ids: set[str] = set()
    formalgeo: dict[str, str] = {}
    for path in files:
        entries = load_yaml_file(path)
        problems.extend(validate_theorems(entries, str(path), ids, formalgeo))
        for entry in entries:
            if isinstance(entry, dict):
                ids.add(entry.get("id"))
                for name in (entry.get("aliases") or {}).get("formalgeo") or []:
                    formalgeo.setdefault(name, entry.get("id"))
                theorems.append(normalize_theorem(entry))
    if problems:
        raise TheoremError("invalid seed theorems:\n  " + "\n  ".join(problems))
    _VALIDATED[key] = copy.deepcopy(theorems)
    return theorems
