"""Symbolic checking of Exec steps: does the stated result follow from the Map values and the relation?

A step's Map binds roles to objects and values ("angle1 = ∠EGB = 50°; angle2 = ∠GHD"); its Exec
states a relation and a conclusion ("angle2 = angle1 => ∠GHD = 50°"). The checker renames roles to
their objects, substitutes every known value (from this Map and from earlier steps' conclusions),
puts the stated value in for the concluded object and decides:

- verified: the relation holds (exactly for exact values; within the rounding of a decimal value),
- wrong: it does not (the reason says what the correct value is), or the relation is not the
  theorem's relation when the bank knows the theorem,
- unverifiable: the text cannot be read or checked (an unknown is left, a size limit was hit...).

Bounded without signals (the app checks from worker threads): every expression goes through
theorem_bank.safe_math, whose caps on length, tokens, nesting, digits, exponents and factorials
keep each sympy object small. Checking a stated value needs no solving at all: it is substituted
and the equation evaluated. Solving (only to say what the correct value is) never calls
sympy.solve, whose run time is unbounded: it uses closed-form roots when the unknown enters
linearly or quadratically (found by differentiating), inverts a single sin/cos/tan/square root
around it, takes numeric roots of polynomials up to degree 6, and otherwise runs a secant
iteration of at most 60 steps. A per-step deadline is checked between those phases. A worker
thread with join(timeout) was rejected: the abandoned thread would keep the CPU (and the GIL).
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import sympy

from model.solution_format import Solution, Step
from theorem_bank.safe_math import MathError, canonical_name, name_of, parse_relation, split_relation, to_sympy

VERIFIED, WRONG, UNVERIFIABLE = "verified", "wrong", "unverifiable"
MAX_EXEC_CHARS = 2000
STEP_DEADLINE_S = 2.0   # a safety net: real steps take milliseconds, hostile ones are refused by size first
_ARROW_RE = re.compile(r"=>|⇒|⟹|⟾|⇨|→|∴")
_DECIMAL_RE = re.compile(r"\d\.\d")
_PRECISION = 30        # digits for values a verdict depends on (residues compared with 1e-12)
_DISPLAY_PRECISION = 15  # digits for values only shown, ranked or used as a size: a double holds them


@dataclass
class StepCheck:
    status: str                      # verified | wrong | unverifiable
    reason: str = ""
    expected: str | None = None      # the correct value of the concluded object, when it could be computed
    facts: dict[str, str] = field(default_factory=dict)   # object -> stated value established by this step
    # The value executing the relation gives for the step's (last) conclusion: the stated value text when it
    # satisfies the relation (verified, or wrong only because the relation is not the theorem's), the correct
    # value when the stated one is wrong (exact text in the safe grammar, else a 12-digit decimal), None when
    # nothing could be derived (unverifiable, or the relation has no real solution).
    derived: str | None = None
    derived_facts: dict[str, str] = field(default_factory=dict)   # object -> derived value, every conclusion


class _Unverifiable(Exception):
    pass


class _Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            raise _Unverifiable(f"checking took too long ({what})")


# --- reading Map and Exec ---------------------------------------------------------------------------

def _as_name(text: str) -> str | None:
    """The canonical object/role name if `text` is a single name, else None."""
    return name_of(text)


@dataclass
class _Binding:
    roles: dict[str, str]              # role -> object (canonical)
    values: dict[str, sympy.Expr]      # object or role -> value
    notes: list[str]


def _read_map(text: str, known: Mapping[str, sympy.Expr], keep_known: bool = False) -> _Binding:
    """Roles and values of a Map line. With `keep_known`, a value the Map writes for an object that `known`
    already holds is ignored: the executed value from an earlier step wins over the model's own arithmetic."""
    roles: dict[str, str] = {}
    values: dict[str, sympy.Expr] = dict(known)
    notes: list[str] = []
    # entries are separated by ';' (models also use ',' before the next "name =")
    for entry in re.split(r"[;；]|,\s*(?=[^,=;；]+=)", text or ""):
        if not entry.strip():
            continue
        try:
            parts = split_relation(entry)
        except MathError as err:
            notes.append(f"Map entry {entry.strip()[:40]!r} ignored: {err}")
            continue
        if len(parts) < 2:
            notes.append(f"Map entry {entry.strip()[:40]!r} ignored: expected 'role = object = value'")
            continue
        role, obj = _as_name(parts[0]), _as_name(parts[1])
        value_text = parts[-1] if len(parts) >= 3 else None
        if role is None:
            notes.append(f"Map entry {entry.strip()[:40]!r} ignored: {parts[0].strip()!r} is not a role name")
            continue
        if obj is None:           # "role = value": the role is bound to a value, not to a named object
            value_text, obj = parts[1], None
        elif _looks_like_role(obj) and not _looks_like_role(role):
            role, obj = obj, role  # "∠EGB = angle1 = 50°"
        if obj is not None:
            roles[role] = obj
        if value_text is not None and keep_known and (obj or role) in known:
            notes.append(f"value of {obj or role} taken from the earlier step, not the Map's {value_text.strip()[:20]!r}")
        elif value_text is not None:
            try:
                value = to_sympy(value_text, {k: v for k, v in values.items() if k != (obj or role)})
            except MathError as err:
                notes.append(f"value of {role} ignored: {err}")
                continue
            values[obj or role] = value
    return _Binding(roles, values, notes)


def _looks_like_role(name: str) -> bool:
    return bool(re.fullmatch(r"[a-z][a-z0-9_]*", name))


@dataclass
class _Conclusion:
    target: str                   # canonical object (or role) name
    written: str                  # the name as the step wrote it, for messages
    value_text: str
    middle: list[str]             # "∠C = 180° - 110° = 70°": the expressions between name and value


def _read_exec(text: str) -> tuple[list[str], list[_Conclusion]]:
    if len(text) > MAX_EXEC_CHARS:
        raise _Unverifiable(f"Exec is {len(text)} characters; the limit is {MAX_EXEC_CHARS}")
    pieces = _ARROW_RE.split(text)
    if len(pieces) > 2:
        relation_text, conclusion_text = "=>".join(pieces[:-1]), pieces[-1]
        relation_text = relation_text.replace("=>", ";")   # a chain of derivations: each must hold
    elif len(pieces) == 2:
        relation_text, conclusion_text = pieces
    else:
        relation_text, conclusion_text = "", pieces[0]
    relations = [r for r in re.split(r"[;；]", relation_text) if r.strip()]
    conclusions = []
    for part in re.split(r"[;；]|,\s+|\band\b", conclusion_text):
        if not part.strip():
            continue
        try:
            sides = split_relation(part)
        except MathError as err:
            raise _Unverifiable(str(err)) from None
        if len(sides) < 2:
            raise _Unverifiable(f"conclusion {part.strip()[:40]!r} is not of the form 'object = value'")
        target = _as_name(sides[0])
        if target is None:
            raise _Unverifiable(f"conclusion {part.strip()[:40]!r} must start with the object it concludes")
        conclusions.append(_Conclusion(target, sides[0].strip(), sides[-1], sides[1:-1]))
    if not conclusions:
        raise _Unverifiable("Exec has no conclusion ('=> object = value')")
    return relations, conclusions


# --- numbers and solving ----------------------------------------------------------------------------

def _numeric(expr: sympy.Expr, digits: int = _PRECISION) -> complex | None:
    """A closed expression as a complex number (None if it has symbols or does not evaluate).
    Rationals and Floats are converted directly; anything else is evaluated to `digits` digits."""
    if expr.free_symbols:
        return None
    try:
        if expr.is_Rational or expr.is_Float:
            return complex(float(expr))
        value = expr.evalf(digits)
        if value.is_Float or value.is_Rational:
            result = complex(float(value))
        else:
            re_part, im_part = value.as_real_imag()
            result = complex(float(re_part), float(im_part))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    if result != result or abs(result) == float("inf"):
        return None
    return result


def _holds(eq: sympy.Eq, replacement: Mapping[sympy.Symbol, sympy.Expr], tolerance: float = 1e-12) -> bool | None:
    """Does the equation hold after the replacement? Exact when the difference is rational."""
    lhs, rhs = eq.lhs.xreplace(replacement), eq.rhs.xreplace(replacement)
    difference = lhs - rhs
    if difference.is_Rational:
        return difference == 0
    value = _numeric(difference)
    if value is None:
        return None
    # 30 significant digits are computed: a residue below 1e-12 of the sides' size is rounding, not error
    if abs(value) <= tolerance:
        return True   # the size of the sides is at least 1 in the comparison below: no need to evaluate it
    scale = [_numeric(side, _DISPLAY_PRECISION) for side in (lhs, rhs)]
    return abs(value) <= tolerance * max([1.0] + [abs(v) for v in scale if v is not None])


def _solve_for(residual: sympy.Expr, target: sympy.Symbol, near: complex | None, deadline: _Deadline
               ) -> list[sympy.Expr]:
    """Real solutions of residual = 0 for target (other symbols must be gone), best candidate first."""
    roots = _low_degree_roots(residual, target)
    if roots is None:
        roots = _peeled_roots(residual, target)
    if roots is None:
        numerator = residual.as_numer_denom()[0]
        deadline.check("before solving")
        roots = _low_degree_roots(numerator, target)
        if roots is None:
            roots = _polynomial_roots(numerator, target)
        if roots is None:
            root = _secant(residual, target, near, deadline)
            roots = [root] if root is not None else []
    real_roots = [r for r in roots if _is_real(r)]

    def rank(r: sympy.Expr) -> tuple[int, float]:
        v = _numeric(r, _DISPLAY_PRECISION).real
        return (0 if v > 0 else 1, abs(v - near.real) if near is not None else abs(v))
    return sorted(real_roots, key=rank)


def _low_degree_roots(expr: sympy.Expr, t: sympy.Symbol) -> list[sympy.Expr] | None:
    """Roots when expr is linear or quadratic in t; else None."""
    coefficients = _term_coefficients(expr, t)
    if coefficients is False:
        return None
    if coefficients is not None:
        a, d1 = coefficients[2], coefficients[1]
        if a == 0:
            return [] if d1 == 0 else [-expr.xreplace({t: 0}) / d1]
        b, c = d1, expr.xreplace({t: 0})
    else:
        # t sits inside a product or power (sqrt(2)*(t + 1), (t - 2)^2): differentiate, which is exact
        # for any shape but costs about half a millisecond per derivative
        d1 = expr.diff(t)
        if t not in d1.free_symbols:
            return [] if d1 == 0 else [-expr.xreplace({t: 0}) / d1]
        d2 = d1.diff(t)
        if t in d2.free_symbols or d2 == 0:
            return None
        a, b, c = d2 / 2, d1.xreplace({t: 0}), expr.xreplace({t: 0})
    disc = b * b - 4 * a * c
    if disc.is_negative:
        return []
    return [(-b + sympy.sqrt(disc)) / (2 * a), (-b - sympy.sqrt(disc)) / (2 * a)]


def _term_coefficients(expr: sympy.Expr, t: sympy.Symbol) -> dict[int, sympy.Expr] | None | bool:
    """The derivatives' answer read off the terms, without differentiating (which costs from half a
    millisecond to tens of milliseconds per call): {1: b, 2: a} when every term is c, c*t or c*t^2;
    False when the terms show that expr is neither linear nor quadratic in t (c*t^3, c/t, sqrt(t),
    sin(t)...); None when some term has another shape, (t - 2)^2 or sqrt(2)*(t + 1), and only
    differentiating can tell."""
    found: dict[int, list[sympy.Expr]] = {1: [], 2: []}
    other = unsure = False
    for term in sympy.Add.make_args(expr):
        if t not in term.free_symbols:
            continue
        coefficient, rest = term.as_independent(t, as_Add=False)
        if rest == t:
            found[1].append(coefficient)
        elif rest.is_Pow and rest.base == t and rest.exp == 2:
            found[2].append(coefficient)
        elif any(_not_polynomial(factor, t) for factor in sympy.Mul.make_args(rest)):
            other = True
        else:
            unsure = True
    if unsure:
        return None
    if other:
        return False
    return {power: sympy.Add(*parts) for power, parts in found.items()}


def _not_polynomial(factor: sympy.Expr, t: sympy.Symbol) -> bool:
    """A factor that no sum of other terms can turn into a polynomial part: f(t), t^-1, sqrt(t + 1), 2^t."""
    if t not in factor.free_symbols:
        return False
    if isinstance(factor, sympy.Function):
        return True
    if factor.is_Pow:
        exp = factor.exp
        return t in exp.free_symbols or not exp.is_Integer or exp < 0 or (factor.base == t and exp > 2)
    return False


def _peeled_roots(expr: sympy.Expr, t: sympy.Symbol) -> list[sympy.Expr] | None:
    """Roots when t sits inside one sin/cos/tan/square root that expr is linear or quadratic in:
    solve for that function's value, invert it (both angles for sin and cos), then solve the inside."""
    holders = [a for a in expr.atoms(sympy.sin, sympy.cos, sympy.tan, sympy.Pow) if t in a.free_symbols
               and (not a.is_Pow or a.exp == sympy.Rational(1, 2))]
    if len(holders) != 1:
        return None
    holder, z = holders[0], sympy.Dummy("z")
    outer = expr.xreplace({holder: z})
    if t in outer.free_symbols:
        return None
    values = _low_degree_roots(outer, z)
    if values is None:
        return None
    inside = holder.base if holder.is_Pow else holder.args[0]
    roots: list[sympy.Expr] = []
    for v in values:
        if not _is_real(v):
            continue
        if holder.is_Pow:
            preimages = [v ** 2] if _numeric(v).real >= 0 else []
        elif holder.func is sympy.sin:
            preimages = [sympy.asin(v), sympy.pi - sympy.asin(v)] if abs(_numeric(v).real) <= 1 else []
        elif holder.func is sympy.cos:
            preimages = [sympy.acos(v), -sympy.acos(v)] if abs(_numeric(v).real) <= 1 else []
        else:
            preimages = [sympy.atan(v)]
        for w in preimages:
            roots += _low_degree_roots(inside - w, t) or []
    return roots


def _polynomial_roots(expr: sympy.Expr, t: sympy.Symbol) -> list[sympy.Expr] | None:
    """Numeric roots of a polynomial of degree 3..6 in t; None when expr is not such a polynomial."""
    try:
        poly = sympy.Poly(expr, t)
    except (sympy.PolynomialError, sympy.GeneratorsNeeded, ValueError, TypeError):
        return None
    if any(c.free_symbols for c in poly.coeffs()) or not 1 <= poly.degree() <= 6:
        return None
    return [sympy.Float(complex(r).real, 15) for r in poly.nroots(n=15, maxsteps=60) if abs(complex(r).imag) < 1e-10]


def _is_real(value: sympy.Expr) -> bool:
    v = _numeric(value)
    return v is not None and abs(v.imag) <= 1e-12 * max(1.0, abs(v.real))


def _secant(residual: sympy.Expr, target: sympy.Symbol, near: complex | None, deadline: _Deadline
            ) -> sympy.Expr | None:
    def f(x: float) -> float | None:
        v = _numeric(residual.xreplace({target: sympy.Float(x, _PRECISION)}))
        return None if v is None or abs(v.imag) > 1e-9 * max(1.0, abs(v.real)) else v.real

    x0 = near.real if near is not None else 1.0
    x1 = x0 * 1.01 + 0.5
    f0, f1 = f(x0), f(x1)
    for _ in range(60):
        deadline.check("numeric solving")
        if f0 is None or f1 is None or f1 == f0:
            return None
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        x0, f0, x1 = x1, f1, x2
        f1 = f(x1)
        if f1 is not None and abs(f1) < 1e-12 and abs(x1 - x0) < 1e-9 * max(1.0, abs(x1)):
            return _tidy(x1)
    return None


def _tidy(x: float) -> sympy.Expr:
    """A numeric root shown as a small fraction when it is one (30.0000000001 -> 30)."""
    frac = sympy.Rational(x).limit_denominator(1000)
    return frac if abs(float(frac) - x) < 1e-9 * max(1.0, abs(x)) else sympy.Float(x, 15)


def _show(value: sympy.Expr) -> str:
    text = str(value).replace("**", "^").replace("sqrt", "√").replace("pi", "π")
    if not value.is_Rational and not value.free_symbols:
        approx = _numeric(value, _DISPLAY_PRECISION)
        if approx is not None and not value.is_Float:
            text += f" ≈ {approx.real:.6g}"
    return text


def _grammar_text(value: sympy.Expr) -> str:
    """`value` as text that theorem_bank.safe_math reads back as the same number (parsed to make sure),
    else as a 12-digit decimal. sympy's spelling is right for rationals, roots and pi, but its trig
    functions take radians and its inverse trig functions answer in radians, unlike the grammar."""
    if value.is_Rational:
        return str(value)
    # the grammar's asin(1/3) (degrees) is 180*asin(1/3)/pi in sympy: spell it back as asin(1/3)
    inverse = {a: sympy.pi / 180 * sympy.Symbol(f"{a.func.__name__}({sympy.sstr(a.args[0])})")
               for a in value.atoms(sympy.asin, sympy.acos, sympy.atan)}
    text = sympy.sstr(value.xreplace(inverse)).replace("**", "^")
    approx = _numeric(value)
    try:
        reread = _numeric(to_sympy(text)) if len(text) <= 200 else None
    except Exception:  # noqa: BLE001 - only a nicer spelling is at stake, never the verdict
        reread = None
    if approx is not None and reread is not None and abs(reread - approx) <= 1e-12 * max(1.0, abs(approx)):
        return text
    return f"{approx.real:.12g}" if approx is not None else text


# --- the relation of the theorem ----------------------------------------------------------------------

_SQUASH = re.compile(r"\s+|°")


def _theorem_mismatch(theorem: dict, relations: list[str], binding: "_Binding") -> str | None:
    """A reason when the Exec relations are not the theorem's relations, compared in the theorem's roles."""
    theirs_texts = tuple(theorem.get("relations") or ())
    if not theirs_texts:
        return None
    squashed, theirs = _bank_relations(str(theorem.get("id", "")), theirs_texts)
    if all(_SQUASH.sub("", r) in squashed for r in relations):
        return None   # the theorem's relation written as in the bank: the usual case, no algebra needed
    if theirs is None:
        return None   # a bank relation we cannot read is the bank's problem, not the step's
    role_names = set(theorem.get("roles") or ())
    role_symbols = {sympy.Symbol(r) for r in role_names}
    # Exec relations may name objects (∠A + ∠B + ∠C = 180): map them back to the roles the Map gave them
    to_role = {obj: sympy.Symbol(role) for role, obj in binding.roles.items() if role in role_names}
    role_values = {sympy.Symbol(role): binding.values[obj] for role, obj in binding.roles.items()
                   if role in role_names and obj in binding.values}
    role_values.update({sympy.Symbol(r): binding.values[r] for r in role_names if r in binding.values})
    unbound_roles = role_names - set(binding.roles)
    shown = "; ".join(theirs_texts)
    for text in relations:
        try:
            ours = [eq.lhs - eq.rhs for eq in parse_relation(text, to_role)]
        except MathError:
            continue
        for residual in ours:
            mine = residual.free_symbols
            if not mine <= role_symbols:
                if unbound_roles:
                    return None   # the Map does not say which object plays which role: cannot compare
                return f"the relation {text.strip()!r} is not the theorem's relation ({shown}): it uses objects no role is mapped to"
            # numbers written into the Exec in place of roles: put the same values into the theorem's relation
            candidates = [t.xreplace({s: role_values[s] for s in t.free_symbols - mine if s in role_values})
                          for t in theirs]
            comparable = [c for c in candidates if c.free_symbols == mine]
            if not comparable:
                if any(mine <= t.free_symbols for t in theirs):
                    continue   # the Map lacks the values that would make them comparable
                return f"the relation {text.strip()!r} is not the theorem's relation ({shown})"
            if not any(_equivalent(residual, c) for c in comparable):
                return (f"the relation {text.strip()!r} is not the theorem's relation ({shown}) "
                        f"with the roles mapped as in Map")
    return None


@lru_cache(maxsize=2048)
def _bank_relations(theorem_id: str, texts: tuple[str, ...]
                    ) -> tuple[frozenset[str], tuple[sympy.Expr, ...] | None]:
    """A theorem's relations as squashed texts and as residuals over its roles (None if unreadable),
    computed once per theorem id and relation texts: every step citing the theorem reuses them."""
    squashed = frozenset(_SQUASH.sub("", t) for t in texts)
    try:
        return squashed, tuple(eq.lhs - eq.rhs for text in texts for eq in parse_relation(text))
    except MathError:
        return squashed, None


@lru_cache(maxsize=4096)
def _equivalent(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Same equation up to rearrangement: a constant multiple, or each vanishes wherever the other does."""
    if a.free_symbols != b.free_symbols:
        return False
    deadline = _Deadline(STEP_DEADLINE_S)
    ratio = sympy.cancel(sympy.fraction(sympy.together(a))[0] / sympy.fraction(sympy.together(b))[0])
    if not ratio.free_symbols and ratio != 0:
        return True
    return _implies(a, b, deadline) and _implies(b, a, deadline)


def _implies(a: sympy.Expr, b: sympy.Expr, deadline: _Deadline) -> bool:
    """b = 0 at sampled points where a = 0 (solving a for one symbol at random values of the others)."""
    rng = random.Random(0)
    symbols = sorted(a.free_symbols, key=lambda s: s.name)
    for solve_for in symbols:
        for _ in range(2):
            point = {s: sympy.Rational(rng.randint(20, 80), rng.choice((3, 7, 11))) for s in symbols if s != solve_for}
            roots = _solve_for(a.xreplace(point), solve_for, None, deadline)
            if not roots:
                break
            # roots may be numeric (double precision), hence the looser tolerance
            if not any(_holds(sympy.Eq(b, 0, evaluate=False), {**point, solve_for: r}, 1e-8) for r in roots):
                return False
        else:
            return True
    return False


# --- checking -----------------------------------------------------------------------------------------

def check_step(step: Step, bank: Any = None, known: dict | None = None, carry: bool = False) -> StepCheck:
    """Check one step. `known` maps object names (e.g. "∠GHD") to values established earlier; with `carry` they
    override the values the Map writes for the same objects (see execute_solution)."""
    try:
        return _check_step(step, bank, known or {}, carry)
    except _Unverifiable as err:
        return StepCheck(UNVERIFIABLE, str(err))
    except MathError as err:
        return StepCheck(UNVERIFIABLE, f"cannot read the Exec: {err}")
    except Exception as err:  # noqa: BLE001 - sympy raises many types; the app must always get a verdict
        return StepCheck(UNVERIFIABLE, f"could not be checked ({type(err).__name__}: {str(err)[:80]})")


def _check_step(step: Step, bank: Any, known: Mapping, carry: bool = False) -> StepCheck:
    deadline = _Deadline(STEP_DEADLINE_S)
    theorem = None
    if bank is not None and step.theorem:
        try:
            theorem = bank.get(step.theorem)
        except Exception:  # noqa: BLE001 - a broken bank is reported as an unknown theorem
            theorem = None
    unknown_note = f"unknown theorem id {step.theorem!r}" if bank is not None and step.theorem and theorem is None else ""
    if not (step.exec or "").strip():
        return StepCheck(UNVERIFIABLE, "; ".join(filter(None, ["no Exec to check", unknown_note])))

    binding = _read_map(step.map, _read_known(known), keep_known=carry)
    relations, conclusions = _read_exec(step.exec)
    deadline.check("reading")

    facts: dict[str, str] = {}
    derived: dict[str, str | None] = {}
    expected_texts: list[str] = []
    wrong: list[str] = []
    for conclusion in conclusions:
        target = binding.roles.get(conclusion.target, conclusion.target)
        verdict, expected, stated, derived[target] = _check_conclusion(target, conclusion, relations, binding,
                                                                       deadline)
        facts[target] = stated
        if verdict is not None:
            wrong.append(verdict)
            if expected is not None:
                expected_texts.append(expected)

    if theorem is not None and relations:
        mismatch = _theorem_mismatch(theorem, relations, binding)
        if mismatch:
            wrong.insert(0, mismatch)
    last = derived[binding.roles.get(conclusions[-1].target, conclusions[-1].target)]
    derived_facts = {obj: value for obj, value in derived.items() if value is not None}
    if wrong:
        return StepCheck(WRONG, "; ".join(filter(None, wrong + [unknown_note])),
                         expected="; ".join(expected_texts) or None, facts=facts, derived=last,
                         derived_facts=derived_facts)
    reason = "the stated value satisfies the relation with the mapped values"
    return StepCheck(VERIFIED, "; ".join(filter(None, [reason, unknown_note])), facts=facts, derived=last,
                     derived_facts=derived_facts)


def _read_known(known: Mapping) -> dict[str, sympy.Expr]:
    """Values from earlier steps; one that cannot be read is left out (the step may then be unverifiable)."""
    values = {}
    for key, value in known.items():
        try:
            values[canonical_name(str(key))] = value if isinstance(value, sympy.Basic) else to_sympy(str(value))
        except MathError:
            continue
    return values


def _check_conclusion(target: str, conclusion: _Conclusion, relations: list[str], binding: _Binding,
                      deadline: _Deadline) -> tuple[str | None, str | None, str, str | None]:
    """(reason if wrong else None, correct value as shown or None, stated value text, derived value text)."""
    target_symbol = sympy.Symbol(target)
    others = {k: v for k, v in binding.values.items() if k != target}
    stated = to_sympy(conclusion.value_text, others)
    if stated.free_symbols - {target_symbol}:
        missing = ", ".join(sorted(s.name for s in stated.free_symbols))
        raise _Unverifiable(f"the stated value of {conclusion.written} depends on unknown {missing}")
    stated_text = conclusion.value_text.strip()
    shown = conclusion.written
    approximate = bool(_DECIMAL_RE.search(stated_text)) or "≈" in stated_text

    # role names become their objects; known values are substituted; the target stays a symbol
    env: dict[str, sympy.Expr] = dict(others)
    for role, obj in binding.roles.items():
        env[role] = others.get(obj, sympy.Symbol(obj)) if obj != target else target_symbol
    equations = [eq for text in relations for eq in parse_relation(text, env)]
    # "∠C = 180° - 110° = 70°": the middle expressions are claims too
    equations += [sympy.Eq(to_sympy(m, env), target_symbol, evaluate=False) for m in conclusion.middle]
    if not equations:
        raise _Unverifiable("Exec has no relation before '=>' to check the conclusion against")
    deadline.check("building")

    unknowns = set().union(*(eq.free_symbols for eq in equations))
    if target_symbol not in unknowns:
        raise _Unverifiable(f"the relation does not involve {shown}; check the Map binds the right role to it")
    leftover = unknowns - {target_symbol}
    if leftover:
        names = ", ".join(sorted(s.name for s in leftover))
        raise _Unverifiable("; ".join([f"no value is known for {names}; give it in the Map"] + binding.notes))

    near = _numeric(stated)
    decimals = max((len(d) for d in re.findall(r"\.(\d+)", stated_text)), default=0)
    tolerance = 0.5 * 10 ** -decimals * 1.0001 if approximate else None   # "18.85": the exact value, rounded
    for eq in equations:
        holds = _holds(eq, {target_symbol: stated})
        if holds is None:
            raise _Unverifiable(f"the relation cannot be evaluated at {shown} = {stated_text}")
        if holds:
            continue
        deadline.check("verifying")
        candidates = _solve_for(eq.lhs - eq.rhs, target_symbol, near, deadline)
        if not candidates:
            return f"{shown} = {stated_text} does not satisfy the relation", None, stated_text, None
        best = candidates[0]
        if tolerance is not None and near is not None and abs(_numeric(best).real - near.real) <= tolerance:
            continue
        expected = _show(best)
        return (f"{shown} = {stated_text} is wrong: the relation gives {shown} = {expected}", expected, stated_text,
                _grammar_text(best))
    return None, None, stated_text, stated_text


def check_solution(solution: Solution, bank: Any = None) -> list[StepCheck]:
    """Check every step in order; each step's stated conclusions are known to the steps after it."""
    known: dict[str, sympy.Expr] = {}
    results = []
    for step in solution.steps:
        result = check_step(step, bank, known)
        results.append(result)
        for obj, value_text in result.facts.items():
            try:
                known[obj] = to_sympy(value_text, known)
            except MathError:
                continue
            if known[obj].free_symbols:
                del known[obj]
    return results


def execute_solution(solution: Solution, bank: Any = None) -> list[StepCheck]:
    """The tutor's own run of the chain: every step's Exec relation is executed with its Map bindings, and an
    object an earlier step concluded carries the value that step's execution gave, not the number the model
    wrote for it. The model chooses the theorems and binds their roles; sympy does the arithmetic. The last
    step's `derived` is the tutor's answer. Verdicts here judge the chain, not the model's own writing: use
    check_solution for the badges on the steps the model wrote."""
    known: dict[str, sympy.Expr] = {}
    results = []
    for step in solution.steps:
        result = check_step(step, bank, known, carry=True)
        results.append(result)
        for obj, value_text in result.derived_facts.items():
            try:
                value = to_sympy(value_text, known)
            except MathError:
                continue
            if not value.free_symbols:
                known.setdefault(obj, value)
    return results
