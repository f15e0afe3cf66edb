"""Building blocks of the synthetic curriculum: exact values, number ranges, figures and gold steps.

A family builds a `Draft` (facts, question target, gold steps, answer, typical-mistake values and a
figure) with canonical point letters; the generator relabels, phrases and draws it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache


DEGREE_CONSTANTS = re.compile(r"(?<![\w.])(60|90|180|360)(?![\w.])")


@lru_cache(maxsize=1)
def core_theorems() -> dict[str, dict]:
    """The contract: id -> theorem dict from geometry_core.yaml, through the bank's validated loader."""
    from theorem_bank.schema import core_theorems as validated

    return validated()


def exec_relation(theorem_id: str) -> str:
    """The theorem's relation(s) as written in Exec: degree constants carry ° when the theorem's
    result is an angle, so "angle1 + angle2 = 180" reads "angle1 + angle2 = 180°"."""
    theorem = core_theorems()[theorem_id]
    degree = any(role["unit"] == "degree" for role in theorem["roles"].values())
    relations = []
    for relation in theorem["relations"]:
        if degree and theorem_id not in ("arc_length", "sector_area"):
            relation = DEGREE_CONSTANTS.sub(r"\1°", relation)
        relations.append(relation)
    return "; ".join(relations)


# ---------------------------------------------------------------- exact values

@dataclass(frozen=True)
class Num:
    """coef * sym, exact: sym is "" , "π" or "√k". Text like "130", "7.5", "6π", "5√3"."""
    coef: Fraction
    sym: str = ""

    def __post_init__(self):
        object.__setattr__(self, "coef", Fraction(self.coef))

    def text(self, unit: str = "") -> str:
        c = self.coef
        if c.denominator == 1:
            body = str(c.numerator)
        elif _terminates(c):
            body = f"{float(c):.6f}".rstrip("0").rstrip(".")
        else:
            body = f"{c.numerator}/{c.denominator}"
        if self.sym:
            body = self.sym if c == 1 else f"{body}{self.sym}"
        return body + unit

    def __add__(self, other):
        other = as_num(other)
        assert self.sym == other.sym, "only like terms add"
        return Num(self.coef + other.coef, self.sym)

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + as_num(other) * -1

    def __rsub__(self, other):
        return as_num(other) - self

    def __mul__(self, k):
        return Num(self.coef * Fraction(k), self.sym)

    __rmul__ = __mul__

    def __truediv__(self, k):
        return Num(self.coef / Fraction(k), self.sym)

    @property
    def positive(self) -> bool:
        return self.coef > 0


def _terminates(c: Fraction) -> bool:
    d = c.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def as_num(value) -> Num:
    return value if isinstance(value, Num) else Num(Fraction(value))


# ---------------------------------------------------------------- number ranges

# family -> parameter -> (train range, outside range); filled as families pick values, so tests can
# check that train never leaves its ranges and test_numbers always does.
RANGES: dict[str, dict[str, tuple[tuple[int, int], tuple[int, int]]]] = {}


class Picker:
    """Draws a family's free values. In the "train" regime every value lies in its train range; in
    the "out" regime the first value drawn (the primary one) comes from its outside range."""

    def __init__(self, rng, family: str, regime: str = "train"):
        self.rng, self.family, self.regime = rng, family, regime
        self.values: dict[str, int] = {}
        self.out: list[str] = []

    def int(self, name: str, train: tuple[int, int], out: tuple[int, int] | None = None, step: int = 1) -> int:
        if out is not None:
            if not (out[1] < train[0] or out[0] > train[1]):
                raise ValueError(f"{self.family}.{name}: outside range {out} overlaps train range {train}")
            RANGES.setdefault(self.family, {})[name] = (train, out)
        lo, hi = train
        if self.regime == "out" and out is not None and (not self.out or self.out[0] == name):
            lo, hi = out
            if name not in self.out:
                self.out.append(name)
        value = self.rng.randrange(_ceil(lo, step), hi + 1, step)
        self.values[name] = value
        return value

    def choice(self, name: str, options):
        value = self.rng.choice(list(options))
        self.values[name] = value
        return value


def _ceil(x: int, step: int) -> int:
    return -(-x // step) * step


# ---------------------------------------------------------------- figures

@dataclass
class Figure:
    """Abstract coordinates (y up); the drawer rotates, scales and styles them."""
    pts: dict[str, tuple[float, float]] = field(default_factory=dict)
    segs: list[tuple[str, str]] = field(default_factory=list)
    circles: list[tuple[str, float]] = field(default_factory=list)      # centre point, radius
    arcs: list[tuple[str, str, str, int]] = field(default_factory=list)  # vertex, ray end, ray end, count
    rights: list[tuple[str, str, str]] = field(default_factory=list)    # vertex, ray end, ray end
    parallels: list[tuple[str, str, int]] = field(default_factory=list)  # segment, arrow count
    ticks: list[tuple[str, str, int]] = field(default_factory=list)      # segment, tick count
    dots: list[str] = field(default_factory=list)                       # points drawn as a dot (centres)
    angle_labels: list[tuple[str, str, str, str]] = field(default_factory=list)  # vertex, ray end, ray end, "1"

    def poly(self, *names: str) -> None:
        for a, b in zip(names, names[1:] + names[:1]):
            self.segs.append((a, b))

    def path(self, *names: str) -> None:
        for a, b in zip(names, names[1:]):
            self.segs.append((a, b))


def polar(center, radius: float, degrees: float) -> tuple[float, float]:
    t = math.radians(degrees)
    return (center[0] + radius * math.cos(t), center[1] + radius * math.sin(t))


def along(p, q, t: float) -> tuple[float, float]:
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def triangle(a_deg: float, b_deg: float, base: float = 1.0):
    """Points A, B, C with ∠A = a_deg at the apex, ∠B = b_deg at B=(0,0), C=(base,0)."""
    c_deg = 180 - a_deg - b_deg
    # law of sines: AB / sin C = BC / sin A
    ab = base * math.sin(math.radians(c_deg)) / math.sin(math.radians(a_deg))
    return polar((0, 0), ab, b_deg), (0.0, 0.0), (base, 0.0)


# ---------------------------------------------------------------- drafts

@dataclass
class Draft:
    """One problem before relabelling, phrasing and drawing (canonical letters, plain data)."""
    family: str
    given: str                 # the facts, e.g. "AB ∥ CD, EF crosses them at G and H, ∠EGB = 50°"
    ask: str                   # noun phrase asked for, e.g. "∠GHC" or "the length of BC"
    answer: Num
    unit: str                  # "°" for angles, "" otherwise
    figure: Figure
    steps: list[dict] = field(default_factory=list)
    mistakes: list[Num] = field(default_factory=list)
    chain: tuple[str, ...] = ()

    def step(self, theorem: str, cond: str, binds, result: tuple[str, Num | str], relation: str | None = None):
        """Add one ⟨Cond, Map, Exec⟩ step. binds: [(role, object, value or None)]; result: (object, value)."""
        theorem_def = core_theorems()[theorem]
        parts = []
        for role, obj, value in binds:
            if role not in theorem_def["roles"]:
                raise KeyError(f"{self.family}: role {role!r} is not a role of {theorem} "
                               f"(roles: {sorted(theorem_def['roles'])}); fix the family or geometry_core.yaml")
            unit = "°" if theorem_def["roles"][role]["unit"] == "degree" else ""
            text = value if isinstance(value, str) or value is None else value.text(unit)
            parts.append(" = ".join(p for p in (role, obj, text) if p))
        obj, value = result
        # the result's unit is its role's: bound by object ("angle2 = ∠GHC") or named by role ("total")
        roles = theorem_def["roles"]
        role = next((r for r, o, _ in binds if o == obj), obj)
        degree = obj.startswith(("∠", "⌒")) or roles.get(role, {}).get("unit") == "degree"
        unit = "°" if degree else ""
        value_text = value if isinstance(value, str) else value.text(unit)
        self.steps.append({"theorem": theorem, "cond": cond, "map": "; ".join(parts),
                           "exec": f"{relation or exec_relation(theorem)} => {obj} = {value_text}"})
        return value


def CoreBank():
    """The core theorems as a bank-shaped lookup, for checking without SQLite."""
    from theorem_bank.schema import TheoremLookup

    return TheoremLookup(core_theorems())
