"""Grounding: does a step talk about this problem? Its points must exist in the problem and its given values must
come from the problem or from an earlier step's conclusion.

The checker decides whether a step's arithmetic is right; it cannot tell whether the Map bound objects that exist
("AB and IM cross at O" in a problem with no I, M or O) or values the problem never gave. A step is *grounded* when

- every point named in its Cond, Map and Exec is a point of the problem (its question text, its choices, and the
  diagram's letters where they are known), and
- every value its Map binds to an object either appears in the question (as the same number, or as the same
  number literals: "2√3" is grounded by "AB = 2√3"), is a constant the problem implies (90° for a right angle or
  a diameter, 60° for an equilateral triangle; 180° and 360° always), or was concluded by an earlier step.

Plain data in, plain data out; text is only read through regular expressions and theorem_bank.safe_math.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from theorem_bank.safe_math import MathError, canonical_name, name_of, split_relation, to_sympy

# A run of capital letters (with digits or primes) not inside a word: "AB", "∠AGC", "O", "A1", but not "As".
_POINT_GROUP = re.compile(r"(?<![A-Za-z])((?:[A-Z][0-9]*'*)+)(?![a-z])")
_POINT = re.compile(r"[A-Z][0-9]*'*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MAP_ENTRY_SPLIT = re.compile(r"[;；]|,\s*(?=[^,=;；]+=)")   # the checker's split of a Map line
_ARROW = re.compile(r"=>|⇒|⟹|⟾|⇨|→|∴")
_ROLE = re.compile(r"[a-z][a-z0-9_]*")
ALWAYS_IMPLIED = ("180", "360")
# words in a question that make a constant a given: a right angle, an equilateral triangle, a full circle
IMPLIED_BY = {
    "90": ("⊥", "right", "perpendicular", "diameter", "semicircle", "rectangle", "square", "tangent", "altitude",
           "height", "rt△", "rt ", "直角", "垂直", "直径", "切线", "矩形", "正方形"),
    "60": ("equilateral", "等边"),
}
# words that make half or double of a given a given too: diagonals that bisect each other, a midpoint, a radius
HALVING_WORDS = ("diagonal", "midpoint", "median", "midline", "bisect", "diameter", "radius", "中点", "中位线",
                 "平分", "直径", "半径", "对角线")


@dataclass(frozen=True)
class ProblemContext:
    """What a step may refer to: the problem's points and the number literals of its question."""
    points: frozenset[str]
    numbers: frozenset[str]
    text: str = ""
    halves: bool = False   # half and double of a given count as given (HALVING_WORDS)


@dataclass
class StepGrounding:
    grounded: bool
    missing_points: list[str] = field(default_factory=list)
    ungrounded_values: list[str] = field(default_factory=list)   # "∠A = 70°" as written in the Map

    def reason(self) -> str:
        """Why the step is not grounded, in words a student reads."""
        parts = []
        if self.missing_points:
            names = ", ".join(self.missing_points)
            noun = "point" if len(self.missing_points) == 1 else "points"
            parts.append(f"it names {noun} {names}, which the problem does not have")
        if self.ungrounded_values:
            parts.append("it uses " + "; ".join(self.ungrounded_values) +
                         ", a value the problem does not give and no earlier step found")
        return " and ".join(parts)


def points_in(text: str) -> list[str]:
    """Point names in free text, in order of appearance, each once: "∠AGC and AB ∥ CD" -> A, G, C, B, D."""
    found: list[str] = []
    for group in _POINT_GROUP.findall(text or ""):
        for point in _POINT.findall(group):
            if point not in found:
                found.append(point)
    return found


def problem_context(question: str, choices: Sequence[str] | None = None,
                    diagram_points: Iterable[str] | str | None = None) -> ProblemContext:
    """The points and numbers a step may use. `diagram_points` are the diagram's letters where known (a synthetic
    record's meta["letters"]); without them only the text counts."""
    text = question or ""
    points = set(points_in(text))
    for choice in choices or ():
        points.update(points_in(str(choice)))
    if diagram_points:
        points.update(_POINT.findall("".join(diagram_points)) if not isinstance(diagram_points, str)
                      else _POINT.findall(diagram_points))
    numbers = set(_NUMBER.findall(text))
    lowered = text.lower()
    numbers.update(ALWAYS_IMPLIED)
    for number, words in IMPLIED_BY.items():
        if any(word in lowered for word in words):
            numbers.add(number)
    halves = any(word in lowered for word in HALVING_WORDS)
    return ProblemContext(frozenset(points), frozenset(_normal_number(n) for n in numbers), text, halves)


def _normal_number(text: str) -> str:
    """"50.0" and "50" are the same literal; "07" is "7"."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.lstrip("0") or "0"


def _object_points(name: str) -> list[str]:
    return _POINT.findall(name) if not _ROLE.fullmatch(name) else []


def _map_values(map_text: str) -> list[tuple[str | None, str, str]]:
    """(object or None, value text, the entry as written) for every Map entry that binds a value."""
    out = []
    for entry in _MAP_ENTRY_SPLIT.split(map_text or ""):
        if not entry.strip():
            continue
        try:
            parts = split_relation(entry)
        except MathError:
            continue
        if len(parts) < 2:
            continue
        names = [name_of(p) for p in parts[:-1]]
        objects = [n for n in names if n is not None and not _ROLE.fullmatch(n)]
        value = parts[-1]
        if name_of(value) is not None:   # "angle2 = ∠GHD": a binding, no value
            continue
        out.append((objects[0] if objects else None, value.strip(), entry.strip()))
    return out


def _value_number(text: str) -> float | None:
    try:
        value = to_sympy(text)
        return None if value.free_symbols else float(value)
    except (MathError, TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None


def ground_step(step, context: ProblemContext, concluded: dict[str, float | None]) -> StepGrounding:
    """Ground one step; `concluded` maps objects earlier steps concluded to their values (None: not numeric)."""
    named: list[str] = []
    for text in (step.cond, step.map, step.exec):
        for point in points_in(text or ""):
            if point not in named:
                named.append(point)
    missing = [p for p in named if p not in context.points]

    ungrounded = []
    earlier_values = [v for v in concluded.values() if v is not None]
    for obj, value_text, written in _map_values(step.map):
        if obj is not None and canonical_name(obj) in concluded:
            continue
        literals = {_normal_number(n) for n in _NUMBER.findall(value_text)}
        if literals and literals <= context.numbers:
            continue
        number = _value_number(value_text)
        givens = list(earlier_values)
        if context.halves:
            givens += [float(n) * k for n in context.numbers for k in (0.5, 2.0)]
        if number is not None and any(abs(number - v) <= 1e-9 * max(1.0, abs(v)) for v in givens):
            continue
        if not literals and number is None:
            continue   # no number in it at all ("x"): nothing given, nothing to ground
        ungrounded.append(written)
    return StepGrounding(not missing and not ungrounded, missing, ungrounded)


def conclusions(step) -> list[str]:
    """The objects a step's Exec concludes ("=> ∠GHC = 130°" -> ["∠GHC"]), canonical."""
    pieces = _ARROW.split(step.exec or "")
    tail = pieces[-1] if len(pieces) > 1 else (step.exec or "")
    out = []
    for part in re.split(r"[;；]|,\s+|\band\b", tail):
        try:
            sides = split_relation(part)
        except MathError:
            continue
        if len(sides) >= 2:
            name = name_of(sides[0])
            if name is not None:
                out.append(canonical_name(name))
    return out


# A named object in a question: an angle (∠ABC, ∠A, ∠1), an arc (⌒AB) or a segment (AB).
_OBJECT = re.compile(r"∠\s*(?:[A-Z][0-9]*'*){1,3}|∠\s*\d|⌒(?:[A-Z][0-9]*'*){2}|(?<![A-Za-z∠⌒])(?:[A-Z][0-9]*'*){2}(?![A-Za-z])")
_GIVEN_AFTER = re.compile(r"^\s*(?:=|＝|is|measures)\s*\d")


def asked_object(question: str) -> str | None:
    """The object the question asks for: the last angle, arc or segment it names without giving its value
    ("..., ∠C = 67°, I lies on CG. Find ∠AGI." -> ∠AGI). None when there is none (a question about an area...)."""
    text = question or ""
    asked = None
    for m in _OBJECT.finditer(text):
        if _GIVEN_AFTER.match(text[m.end():m.end() + 12]):
            continue
        name = name_of(re.sub(r"\s+", "", m.group(0)))
        if name is not None:
            asked = canonical_name(name)
    return asked


def answers_question(steps: Sequence, asked: str | None) -> bool:
    """Does the chain end on the object the question asks for? An angle asked by its vertex alone (∠E) is
    answered by any angle at that vertex (∠CEH). True when the question names no object to check against."""
    if asked is None:
        return True
    if not steps:
        return False
    found = conclusions(steps[-1])
    if not found:
        return False
    last = found[-1]
    if last == asked or _ROLE.fullmatch(last):
        return True   # a quantity named by a word (area, circumference) cannot be matched to a letter name
    if last.startswith("⌒") and canonical_name(last[1:]) == asked:
        return True   # "the degree of arc AB": the question names the arc by its segment
    if asked.startswith("∠") and last.startswith("∠"):
        a, b = _POINT.findall(asked[1:]), _POINT.findall(last[1:])
        if len(a) == 1 and len(b) == 3:
            return a[0] == b[1]
        if len(b) == 1 and len(a) == 3:
            return b[0] == a[1]
    return False


def ground_solution(steps: Sequence, context: ProblemContext, executed: Sequence = ()) -> list[StepGrounding]:
    """Ground every step in order; an object a step concludes is a given for the steps after it. `executed`
    (model.checker.execute_solution's results, one per step) supplies the values those conclusions have."""
    concluded: dict[str, float | None] = {}
    out = []
    for i, step in enumerate(steps):
        out.append(ground_step(step, context, concluded))
        derived = getattr(executed[i], "derived_facts", {}) if i < len(executed) else {}
        for obj in conclusions(step):
            value = derived.get(obj)
            concluded[obj] = _value_number(value) if value is not None else None
        for obj, value in (derived or {}).items():
            concluded.setdefault(canonical_name(obj), _value_number(value))
    return out
