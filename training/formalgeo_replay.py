"""Replay a FormalGeo7k problem's theorem sequence with the `formalgeo` solver and read back what each step did.

For every applied theorem we record, from the problem's condition store: the theorem, branch and parameters, the
premises it used (rendered readably: "DE ∥ BC", "△ABC"), the relations it concluded (equations over readable
objects: "∠DBC + ∠BCA + ∠EAD = 180°") and the values known before and after it. Plain data out; the
target builder (training/formalgeo_targets.py) turns it into ⟨Cond, Map, Exec⟩ steps.

Objects are named once per problem and consistently: FormalGeo gives one symbol to all spellings of an angle
(∠ABC = ∠DBC when D lies on BA), and we print it under the spelling the problem text uses when there is one.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import sympy

# Readable names for FormalGeo attributes that are not angles or segments. They are plain identifiers so the
# safe expression parser reads them as symbols; the letters keep them tied to the figure.
ATTRIBUTE_NAMES = {
    "PerimeterOfTriangle": "perimeter_{}", "AreaOfTriangle": "area_{}", "HeightOfTriangle": "height_{}",
    "RatioOfSimilarTriangle": "ratio_{}_{}", "RatioOfMirrorSimilarTriangle": "ratio_{}_{}",
    "PerimeterOfQuadrilateral": "perimeter_{}", "AreaOfQuadrilateral": "area_{}", "HeightOfQuadrilateral": "height_{}",
    "RatioOfSimilarQuadrilateral": "ratio_{}_{}", "RatioOfMirrorSimilarQuadrilateral": "ratio_{}_{}",
    "LengthOfArc": "arclength_{}", "MeasureOfArc": "arc_{}", "RatioOfSimilarArc": "ratio_{}_{}",
    "RadiusOfCircle": "radius_{}", "DiameterOfCircle": "diameter_{}", "PerimeterOfCircle": "circumference_{}",
    "AreaOfCircle": "area_circle_{}", "PerimeterOfSector": "perimeter_sector_{}", "AreaOfSector": "area_sector_{}",
}
DEGREE_ATTRIBUTES = {"MeasureOfAngle", "MeasureOfArc"}
# Entity/shape facts that every step trivially relies on; listing them in Cond would only add noise.
SILENT_PREDICATES = {"Point", "Line", "Angle", "Shape", "Arc", "Equation"}


class ReplayError(RuntimeError):
    """The replay could not run or did not reach the goal; the message is the reject reason."""


@dataclass
class Relation:
    text: str                      # readable relation, e.g. "∠BCA + ∠CED = 180°"
    expr: Any                      # sympy expression (== 0) over display symbols
    objects: list[str]             # display names in the relation
    solved: tuple[str, Any] | None  # (object, value) newly known after this step and determined by it alone


@dataclass
class Application:
    theorem: str                   # FormalGeo theorem name
    branch: str | None
    params: tuple[str, ...]
    premises: list[str]            # readable premise facts (Cond)
    relations: list[Relation]
    facts: list[str]               # readable logic conclusions ("△ABC ∼ △DEF")
    known_before: dict[str, Any]   # display name -> value known before the step
    known_after: dict[str, Any]
    applied: bool                  # False: the solver refused the theorem (premises not met)
    depends_on: set[int] = field(default_factory=set)  # indices of earlier applications whose results it uses
    entities: list[str] = field(default_factory=list)  # the angles/lines/arcs it used, for a Cond with no facts
    equations_used: list[str] = field(default_factory=list)  # equation premises ("∠BDA = ∠CDE"), for judgments


@dataclass
class Replay:
    problem_id: int
    applications: list[Application]
    goal_text: str                 # readable goal expression ("∠CED")
    goal_expr: Any                 # the goal as a sympy expression over display symbols (None for logic goals)
    goal_value: Any                # value the solver derived for it (None if unsolved)
    initial_known: dict[str, Any]  # display name -> number or expression in free variables, before any theorem
    given_relations: list[Any]     # other initial equations (display sympy exprs == 0), e.g. AD = BD
    final_values: dict[str, Any]   # display name -> value after the whole sequence (solver's own)
    solved: bool                   # the solver's own verdict against problem_answer
    names: dict[str, str] = field(default_factory=dict)  # FormalGeo symbol -> display name
    kinds: dict[str, str] = field(default_factory=dict)  # display name -> FormalGeo attribute (MeasureOfAngle, Free...)
    # Values the solver derived during the replay: (display name, value, indices of the applications it needed)
    derived: list[tuple[str, Any, frozenset]] = field(default_factory=list)


@lru_cache(maxsize=4)
def interactor_for(gdl_dir: str):
    """One parsed GDL per process (parsing is the expensive part of building an Interactor)."""
    from formalgeo.solver import Interactor

    gdl = Path(gdl_dir)
    try:
        predicates = json.loads((gdl / "predicate_GDL.json").read_text(encoding="utf-8"))
        theorems = json.loads((gdl / "theorem_GDL.json").read_text(encoding="utf-8"))
    except OSError as err:
        raise ReplayError(f"FormalGeo GDL not readable in {gdl} ({err}); expected predicate_GDL.json and "
                          f"theorem_GDL.json from formalgeo7k_v1/gdl") from None
    return Interactor(predicates, theorems)


# ----------------------------------------------------------------------------------------------- naming

def _preferred_spellings(problem: dict[str, Any]) -> set[tuple[str, tuple[str, ...]]]:
    """(attribute, letters) pairs spelled in the problem's givens and goal: the names a reader already knows."""
    spelled = set()
    for text in list(problem.get("text_cdl", [])) + list(problem.get("image_cdl", [])) + [problem.get("goal_cdl", "")]:
        for attr, letters in re.findall(r"([A-Z][A-Za-z]+)\(([A-Z,]+)\)", text):
            spelled.add((attr, tuple(letters.replace(",", ""))))
    return spelled


def display_name(attr: str, items: tuple, spelled: set) -> str:
    """Readable, parseable name for a FormalGeo attribute symbol."""
    if attr == "Free":
        return "".join(items[0])
    preferred = [item for item in items if (attr, tuple(item)) in spelled]
    item = tuple(preferred[0] if preferred else items[0])
    if attr == "MeasureOfAngle":
        return "∠" + "".join(item)
    if attr == "LengthOfLine":
        return "".join(item)
    template = ATTRIBUTE_NAMES.get(attr, attr.lower() + "_{}")
    letters = "".join(item)
    if template.count("{}") == 2:  # two figures: ABC,DEF or OAB,OCD
        half = len(letters) // 2
        return template.format(letters[:half], letters[half:])
    return template.format(letters)


class Namer:
    """FormalGeo symbols -> display symbols, stable for the whole problem."""

    def __init__(self, condition, spelled):
        self.condition, self.spelled = condition, spelled
        self.names: dict[Any, str] = {}
        self.kinds: dict[str, str] = {}

    def name(self, sym) -> str:
        if sym not in self.names:
            attr, items = self.condition.attr_of_sym.get(sym, ("Free", (str(sym),)))
            from theorem_bank.safe_math import canonical_name

            base = display_name(attr, items, self.spelled)
            taken = {canonical_name(n) for n in self.names.values()}
            candidate, n = base, 2
            if attr == "MeasureOfAngle" and canonical_name(base) in taken:
                # formalgeo measures ∠ABC and ∠CBA separately (they add up to 360°); the checker reads both
                # spellings as one angle, so the second one gets a plain identifier.
                base = candidate = "angle_" + base[1:]
            while canonical_name(candidate) in taken:  # two symbols must never read alike
                candidate, n = f"{base}_{n}", n + 1
            self.names[sym] = candidate
            self.kinds[candidate] = attr
        return self.names[sym]

    def symbol(self, sym) -> sympy.Symbol:
        name = self.name(sym)
        # Geometric quantities are positive (as in formalgeo); free variables (x, y) may be anything real.
        return sympy.Symbol(name, real=True) if self.kinds[name] == "Free" else sympy.Symbol(name, positive=True)

    def to_display(self, expr):
        return expr.xreplace({s: self.symbol(s) for s in expr.free_symbols})

    def is_degree(self, name: str) -> bool:
        return self.kinds.get(name) in DEGREE_ATTRIBUTES


def as_sympy(value) -> sympy.Basic:
    """A value from formalgeo's solver (a sympy object or a Python number) as a sympy object.

    Text is refused rather than parsed: nothing in this project turns a string into an expression
    except theorem_bank.safe_math."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a sympy object or a number from the solver, got {type(value).__name__}")
    return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)


# ----------------------------------------------------------------------------------------------- printing

def format_value(value, degrees: bool = False) -> str:
    """40 -> "40", 5/2 -> "5/2", 2*sqrt(3) -> "2*sqrt(3)", 12.50000 -> "12.5"; angles get "°"."""
    value = sympy.nsimplify(value, rational=False) if isinstance(value, sympy.Float) else as_sympy(value)
    value = degrees_inverse_trig(value)
    if isinstance(value, sympy.Float):
        text = f"{float(value):.6g}"
    else:
        text = sympy.sstr(value)
    text = text.replace("**", "^")
    return text + "°" if degrees and _is_number_text(text) else text


_DEGREE_INVERSE = {f: sympy.Function(f.__name__) for f in (sympy.asin, sympy.acos, sympy.atan)}


def degrees_inverse_trig(value):
    """formalgeo's inverse trig answers in radians (180*atan(v)/pi); the safe grammar's atan answers in degrees.
    Rewrite atan(v) as pi/180 * atan°(v), with atan° an unevaluated function that prints as "atan"."""
    for function, degree_version in _DEGREE_INVERSE.items():
        if value.has(function):
            value = value.replace(function, lambda arg, d=degree_version: sympy.pi / 180 * d(arg))
    return sympy.expand(value) if value.has(*_DEGREE_INVERSE.values()) else value


def _is_number_text(text: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?(/\d+)?", text) is not None


def _side_text(terms, namer: Namer) -> str:
    if not terms:
        return "0"
    text = sympy.sstr(sympy.Add(*terms), order="none")
    return text.replace("**", "^")


def relation_text(expr, namer: Namer) -> str:
    """expr == 0 written as "positive terms = negated negative terms", constants on the right."""
    expr = sympy.expand(expr)
    left, right = [], []
    for term in sympy.Add.make_args(expr):
        coeff, _ = term.as_coeff_Mul()
        if term.is_number:
            right.append(-term)
        elif coeff.is_negative:
            right.append(-term)
        else:
            left.append(term)
    if not left:
        left, right = [-t for t in right if not t.is_number], [-t for t in right if t.is_number] or []
        right = [t for t in right]
    if not left:  # purely numeric: nothing to say
        return sympy.sstr(expr) + " = 0"
    lhs, rhs = _side_text(left, namer), _side_text(right, namer)
    names = {str(s) for s in expr.free_symbols}
    if names and all(namer.is_degree(n) for n in names) and _is_number_text(rhs) and expr.is_polynomial() \
            and sympy.Poly(expr, *expr.free_symbols).total_degree() == 1:
        rhs += "°"
    return f"{lhs} = {rhs}"


def _join_letters(letters: tuple, sizes: list[int]) -> list[str]:
    out, pos = [], 0
    for size in sizes:
        out.append("".join(letters[pos:pos + size]))
        pos += size
    return out


def _words(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r" \1", camel).lower()


def fact_text(predicate: str, item: tuple) -> str | None:
    """A readable statement of a logic fact; None for facts not worth stating."""
    if predicate in SILENT_PREDICATES:
        return None
    p = "".join(item)
    if predicate == "Polygon":
        return {3: f"△{p}", 4: f"quadrilateral {p}"}.get(len(item), f"polygon {p}")
    if predicate == "Collinear":
        return f"{', '.join(item)} are collinear"
    if predicate == "Cocircular":
        return f"{', '.join(item[1:])} lie on ⊙{item[0]}" if len(item) > 1 else f"⊙{item[0]}"
    if predicate == "Circle":
        return f"⊙{p}"
    if predicate == "ParallelBetweenLine":
        return f"{p[:2]} ∥ {p[2:]}"
    if predicate == "PerpendicularBetweenLine":
        return f"{p[:2]} ⊥ {p[2:]}"
    if predicate in ("SimilarBetweenTriangle", "MirrorSimilarBetweenTriangle"):
        mirrored = " (mirror)" if predicate.startswith("Mirror") else ""
        return f"△{p[:3]} ∼ △{p[3:]}{mirrored}"
    if predicate in ("CongruentBetweenTriangle", "MirrorCongruentBetweenTriangle"):
        mirrored = " (mirror)" if predicate.startswith("Mirror") else ""
        return f"△{p[:3]} ≅ △{p[3:]}{mirrored}"
    if predicate == "IsMidpointOfLine":
        return f"{p[0]} is the midpoint of {p[1:]}"
    if predicate == "IsMidpointOfArc":
        return f"{p[0]} is the midpoint of arc {p[2:]} of ⊙{p[1]}"
    if predicate == "IsBisectorOfAngle":
        return f"{p[:2]} bisects ∠{p[2:]}"
    if predicate == "IsDiameterOfCircle":
        return f"{p[:2]} is a diameter of ⊙{p[2:]}"
    if predicate == "IsTangentOfCircle":
        return f"{p[:2]} is tangent to ⊙{p[2:]}"
    if predicate == "IsCentreOfCircle":
        return f"{p[0]} is the centre of ⊙{p[1:]}"
    if predicate in ("IsPerpendicularBisectorOfLine",):
        return f"{p[:2]} is the perpendicular bisector of {p[2:]}"
    if predicate.startswith("Is") and "Of" in predicate:  # IsMedianOfTriangle(AD,ABC) -> "AD is the median of ABC"
        role, _, owner = predicate[2:].partition("Of")
        head = 2 if owner in ("Triangle", "Quadrilateral", "Line") else 1
        return f"{p[:head]} is the {_words(role)} of {_words(owner)} {p[head:]}"
    # Entities: RightTriangle(ABC) -> "ABC is a right triangle"
    words = _words(predicate)
    article = "an" if words[0] in "aeiou" else "a"
    return f"{p} is {article} {words}"


# ----------------------------------------------------------------------------------------------- replay

def _is_free(sym, condition) -> bool:
    return condition.attr_of_sym.get(sym, ("Free",))[0] == "Free"


def _solve_linear(expr, sym):
    """sym from expr == 0 when expr is linear in sym (the givens are: "∠TRS = 4y - 10"); else None.
    Cheaper than sympy.solve by two orders of magnitude, which matters at 7k problems x every step."""
    slope = sympy.diff(expr, sym)
    if slope == 0 or sym in slope.free_symbols:
        return None
    return sympy.expand(-(expr - slope * sym) / slope)


def known_symbols(condition) -> dict[Any, Any]:
    """FormalGeo symbol -> what is known of it now: a number, or an expression in the problem's free variables
    (Geometry3K gives "∠TRS = 4y - 10"; such a binding lets a step solve for y)."""
    known = {sym: value for sym, value in condition.value_of_sym.items() if value is not None}
    for eq in condition.items_group.get("Equation", []):
        attrs = [s for s in eq.free_symbols if not _is_free(s, condition)]
        if len(attrs) != 1 or attrs[0] in known or len(eq.free_symbols) == 1:
            continue
        value = _solve_linear(eq, attrs[0])
        if value is not None:
            known[attrs[0]] = value
    return known


def _known_values(known: dict, namer: Namer) -> dict[str, Any]:
    return {namer.name(sym): namer.to_display(as_sympy(value)) for sym, value in known.items()}


def replay_problem(problem: dict[str, Any], gdl_dir: str | Path) -> Replay:
    """Apply `problem["theorem_seqs"]` in order; raises ReplayError with the reason when it cannot."""
    from formalgeo.parse import parse_one_theorem

    interactor = interactor_for(str(gdl_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # formalgeo warns for every refused theorem; we record that ourselves
        try:
            interactor.load_problem(problem)
        except Exception as err:  # formalgeo raises bare Exception for CDL it cannot read
            raise ReplayError(f"formalgeo could not load the problem: {err}") from None
        condition = interactor.problem.condition
        namer = Namer(condition, _preferred_spellings(problem))
        initial = known_symbols(condition)
        initial_known = _known_values(initial, namer)
        given_relations = []  # equations among unknowns that the givens state (AD = BD, bisected angles)
        for eq in condition.items_group.get("Equation", []):
            residual = eq.xreplace({s: v for s, v in initial.items() if s in eq.free_symbols})
            if len(residual.free_symbols) >= 2:
                given_relations.append(namer.to_display(eq))
        applications, starts = [], []
        for theorem_text in problem.get("theorem_seqs", []):
            try:
                name, branch, params = parse_one_theorem(theorem_text)
            except Exception:
                raise ReplayError(f"unreadable theorem {theorem_text!r}") from None
            first_new = len(condition.items)
            values_before = known_symbols(condition)
            known_before = _known_values(values_before, namer)
            try:
                applied = interactor.apply_theorem(name, branch, params)
            except Exception as err:
                raise ReplayError(f"formalgeo failed on {theorem_text}: {err}") from None
            applications.append(_read_application(condition, namer, first_new, name, branch, params or (), applied,
                                                  values_before, known_before))
            starts.append(first_new)
        derived = _link_dependencies(condition, applications, starts, namer)
        goal = interactor.problem.goal
        solved_value = None
        if goal.type == "algebra" and isinstance(goal.item, sympy.Symbol):
            solved_value = condition.value_of_sym.get(goal.item)
        if solved_value is not None:
            # check_goal would run the equation solver again for a value we already have.
            goal.solved_answer = solved_value
            goal.solved = abs(complex(sympy.N(solved_value - goal.answer))) < 1e-3
        else:
            interactor.problem.check_goal()
    goal_text, goal_expr = "", None
    if goal.type == "algebra" and goal.item is not None:
        goal_expr = namer.to_display(goal.item)
        goal_text = sympy.sstr(goal_expr).replace("**", "^")
    final = {sym: v for sym, v in condition.value_of_sym.items() if v is not None}
    return Replay(problem_id=problem.get("problem_id"), applications=applications, goal_text=goal_text,
                  goal_expr=goal_expr, goal_value=goal.solved_answer, solved=bool(goal.solved),
                  initial_known=initial_known, given_relations=given_relations,
                  final_values=_known_values(final, namer), names={str(s): n for s, n in namer.names.items()},
                  kinds=dict(namer.kinds), derived=derived)


def _link_dependencies(condition, applications: list[Application], starts: list[int], namer: Namer) -> list:
    """Fill each application's `depends_on` from the premise links formalgeo records for every condition.

    An item belongs to the application during whose replay it was added (including values the equation solver
    derived right after it); its dependencies are its own application plus those of its premises. Premises always
    precede the item, so one pass in id order suffices.
    """
    if not starts:
        return []
    bounds = starts + [len(condition.items)]
    owner = {}
    for index in range(len(applications)):
        for item_id in range(bounds[index], bounds[index + 1]):
            owner[item_id] = index
    deps: dict[int, frozenset] = {}
    for item_id in range(starts[0], len(condition.items)):
        found = {owner[item_id]}
        for premise in condition.items[item_id][2]:
            if premise >= starts[0]:
                found |= deps[premise]
        deps[item_id] = frozenset(found)
    for index, app in enumerate(applications):
        needed: set[int] = set()
        for item_id in range(bounds[index], bounds[index + 1]):
            predicate, _item, premise, theorem, _step = condition.items[item_id]
            if theorem[0] == app.theorem:
                for p in premise:
                    if p >= starts[0]:
                        needed |= deps[p]
        app.depends_on = needed - {index}
    derived = []
    for item_id in range(starts[0], len(condition.items)):
        predicate, item, _premise, theorem, _step = condition.items[item_id]
        if predicate == "Equation" and theorem[0] == "solve_eq" and len(item.free_symbols) == 1:
            sym = next(iter(item.free_symbols))
            value = _solve_linear(item, sym)
            if value is not None and sym in condition.attr_of_sym:
                derived.append((namer.name(sym), value, deps[item_id]))
    return derived


def _read_application(condition, namer: Namer, first_new: int, name, branch, params, applied,
                      values_before, known_before) -> Application:
    premises: list[str] = []
    relations: list[Relation] = []
    facts: list[str] = []
    premise_ids: list[int] = []
    for predicate, item, premise, theorem, _step in condition.items[first_new:]:
        if theorem[0] == "extended" and predicate == "Equation":
            # What a concluded fact means in numbers (BD ⊥ AD gives ∠BDA = 90): part of this step's result.
            relations.append(_relation(item, namer, values_before, condition))
            continue
        if theorem[0] != name:
            continue  # solver-derived values and their bookkeeping come after the theorem's own conclusions
        premise_ids.extend(p for p in premise if p >= 0 and p not in premise_ids)
        if predicate == "Equation":
            relations.append(_relation(item, namer, values_before, condition))
        else:
            text = fact_text(predicate, item)
            if text:
                facts.append(text)
    entities: list[str] = []
    equations: list[str] = []
    for pid in premise_ids:
        predicate, item = condition.items[pid][0], condition.items[pid][1]
        text = fact_text(predicate, item)
        if text and text not in premises:
            premises.append(text)
        elif predicate == "Equation" and item.free_symbols:
            text = relation_text(namer.to_display(item), namer)
            if text not in equations:
                equations.append(text)
        elif predicate in ("Angle", "Line", "Arc"):
            entity = {"Angle": "∠{}", "Line": "{}", "Arc": "arc {}"}[predicate].format("".join(item))
            if entity not in entities:
                entities.append(entity)
    return Application(entities=entities, equations_used=equations, theorem=name, branch=branch, params=tuple(params), premises=premises, relations=relations,
                       facts=facts, known_before=known_before, known_after=_known_values(known_symbols(condition), namer),
                       applied=bool(applied))


def _relation(expr, namer: Namer, values_before, condition) -> Relation:
    display = namer.to_display(expr)
    objects = [namer.name(s) for s in expr.free_symbols]
    # Substitute what was known before the step; if one unknown is left and the solver's value for it
    # satisfies the relation, this step alone determines it (otherwise the solver combined several relations).
    residual = expr.xreplace({s: values_before[s] for s in expr.free_symbols if s in values_before})
    unknown = list(residual.free_symbols)
    solved = None
    if len(unknown) == 1:
        sym = unknown[0]
        value = condition.value_of_sym.get(sym)
        if value is not None:
            try:
                ok = abs(complex(sympy.N(residual.xreplace({sym: value})))) < 1e-6
            except (TypeError, ValueError):
                ok = False
            if ok:
                solved = (namer.name(sym), value)
    return Relation(text=relation_text(display, namer), expr=display, objects=sorted(objects), solved=solved)
