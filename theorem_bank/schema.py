"""The theorem schema: loading seed YAML files and validating every entry before it reaches the store.

Validation is all-or-nothing per file: `validate_theorems` returns every problem it finds (entry id,
field, what is wrong), so a caller can refuse a whole file and say exactly what to fix.
"""
from __future__ import annotations

import cmath
import copy
import functools
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


# A seed file is hand-written text: the shipped ones are ~60 KB with ~10k YAML nodes nested 5 deep. The limits stop
# a small hostile file (an alias "billion laughs", thousands of nested brackets) before it costs memory or time.
MAX_SEED_BYTES = 2 * 1024 * 1024
MAX_YAML_NODES = 200_000   # counted with every alias expanded, as validation and the store will walk them
MAX_YAML_DEPTH = 32


class _SeedLimit(yaml.YAMLError):
    """Valid YAML that a seed file may not contain."""


class _SeedLoader(yaml.SafeLoader):
    """safe_load's loader, bounded: aliases are allowed (yaml.safe_dump writes them for shared values) but the
    document they expand to may have at most MAX_YAML_NODES nodes, MAX_YAML_DEPTH levels deep. An 881-byte file
    of nine aliases nine times over expands to 9^9 strings: counted here, before anything walks it."""

    def compose_document(self):
        self._depth = 0
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, 0)
        return node

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _SeedLimit(f"line {mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(node, sizes: dict, depth: int) -> int:
    """Nodes under `node` with aliases expanded (each shared node is sized once); raises past the limits."""
    if id(node) in sizes:
        if sizes[id(node)] is None:
            raise _SeedLimit(f"line {node.start_mark.line + 1}: an alias refers to a value that contains it")
        return sizes[id(node)]
    if depth > MAX_YAML_DEPTH:
        raise _SeedLimit(f"line {node.start_mark.line + 1}: aliases nest values deeper than {MAX_YAML_DEPTH} levels")
    sizes[id(node)] = None  # in progress: meeting it again below is a cycle
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, depth + 1)
        if total > MAX_YAML_NODES:
            raise _SeedLimit(f"line {node.start_mark.line + 1}: expands (through its aliases) to more than "
                             f"{MAX_YAML_NODES} values; write the values out or split the file")
    sizes[id(node)] = total
    return total


def load_yaml_file(path: str | Path) -> list[dict]:
    """Read one seed file: a YAML list of theorem mappings, UTF-8, within the size limits above."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SEED_BYTES:
            raise TheoremError(f"{path}: {path.stat().st_size} bytes; a seed file may hold at most {MAX_SEED_BYTES}"
                               " bytes, split it into several files")
        raw = path.read_bytes()
    except OSError as exc:
        raise TheoremError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TheoremError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file "
                           "as UTF-8 and retry") from None
    try:
        data = yaml.load(text, Loader=_SeedLoader)  # noqa: S506 - _SeedLoader is a SafeLoader
    except _SeedLimit as exc:
        raise TheoremError(f"{path}: refused ({exc})") from None
    except yaml.YAMLError as exc:
        raise TheoremError(f"{path}: not valid YAML ({exc}); fix the syntax and retry") from None
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
        equations.extend((i, k, eq) for k, eq in enumerate(eqs))
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
        for i, k, eq in equations:
            missing = {role_symbols[s] for s in eq.free_symbols} - set(example)
            if missing:
                problems.append(f"{where}: field 'examples[{j}]' leaves {sorted(missing)} unbound in relations[{i}]")
                continue
            try:
                lhs, rhs = _example_sides(entry["relations"][i], k, values)
            except MathError as exc:
                problems.append(f"{where}: field 'examples[{j}]' cannot be evaluated safely in relations[{i}] "
                                f"({exc}); use smaller values or a simpler relation")
                continue
            except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
                problems.append(f"{where}: field 'examples[{j}]' cannot evaluate relations[{i}] ({exc})")
                continue
            if not (cmath.isfinite(lhs) and cmath.isfinite(rhs)):
                problems.append(f"{where}: field 'examples[{j}]' makes relations[{i}] {entry['relations'][i]!r} "
                                f"overflow (left side {lhs.real:.6g}, right side {rhs.real:.6g}); an example needs "
                                "values whose sides are finite numbers")
                continue
            if abs(lhs - rhs) > TOLERANCE * max(1.0, abs(lhs), abs(rhs)):
                problems.append(
                    f"{where}: field 'examples[{j}]' does not satisfy relations[{i}] "
                    f"{entry['relations'][i]!r}: left side {lhs.real:.6g}, right side {rhs.real:.6g}"
                )
    return problems


def _example_sides(relation: str, position: int, values: dict) -> tuple[complex, complex]:
    """Both sides of one equation of `relation` at an example's values, as complex numbers.

    The values are substituted while safe_math builds the expression (`parse_relation(text, values)`), so its
    size guards cover what they produce: a symbolic `((x^1000)^1000)^1000` is cheap, but with x = 3 substituted
    after building (as this did with xreplace) sympy computed 3^(10^9) exactly, and one 420-byte seed made every
    bank build take 40 s. `position`: which equation of a chained relation (a = b = c)."""
    from theorem_bank.safe_math import parse_relation

    equation = parse_relation(relation, values)[position]
    return complex(equation.lhs.evalf(30)), complex(equation.rhs.evalf(30))


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
        where = f"{source}: entry {index + 1} (id {_short_repr(ident)})"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        shape = _check_shape(entry, where)
        problems.extend(shape)
        if not isinstance(ident, str):
            continue  # _check_shape said what is wrong with it; a list or mapping id cannot be compared
        if ident in seen:
            problems.append(f"{where}: field 'id' duplicates an existing theorem id; choose a new id")
        seen.add(ident)
        aliases = entry.get("aliases") if isinstance(entry.get("aliases"), dict) else {}
        formalgeo = aliases.get("formalgeo")
        for name in formalgeo if isinstance(formalgeo, list) else []:
            if not isinstance(name, str):
                continue  # reported by _check_shape
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


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:45] + "..." + text[-10:]


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
        if problems:
            continue  # a bad file is reported; its entries are not normalized (they may not have the shape)
        for entry in entries:
            ids.add(entry["id"])
            for name in entry["aliases"].get("formalgeo") or []:
                formalgeo.setdefault(name, entry["id"])
            theorems.append(normalize_theorem(entry))
    if problems:
        raise TheoremError("invalid seed theorems:\n  " + "\n  ".join(problems))
    _VALIDATED[key] = copy.deepcopy(theorems)
    return theorems


CORE_FILE = SEEDS_DIR / "geometry_core.yaml"


@functools.lru_cache(maxsize=1)
def _core_theorems() -> tuple[dict, ...]:
    entries = load_yaml_file(CORE_FILE)
    problems = validate_theorems(entries, str(CORE_FILE))
    if problems:
        raise TheoremError("invalid core theorems:\n  " + "\n  ".join(problems))
    return tuple(normalize_theorem(entry) for entry in entries)


def core_theorems() -> dict[str, dict]:
    """id -> theorem of geometry_core.yaml (the synthetic curriculum's and the targets' contract), validated and
    normalized exactly as the bank stores it; read once per process. The one reader of that file."""
    return {theorem["id"]: copy.deepcopy(theorem) for theorem in _core_theorems()}


class TheoremLookup:
    """A bank-shaped view of plain theorem dicts (.get(id), .all()): what the checker and the target builders need,
    without the SQLite store. The one in-memory bank."""

    def __init__(self, theorems):
        self.theorems = {t["id"]: t for t in (theorems.values() if isinstance(theorems, dict) else theorems)}

    def get(self, theorem_id):
        return self.theorems.get(theorem_id)

    def all(self) -> list[dict]:
        return list(self.theorems.values())

    def __len__(self) -> int:
        return len(self.theorems)
