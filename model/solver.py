"""Solving an Exec relation for its concluded object, under a deterministic work budget.

model.checker decides verdicts; this module finds numbers: a closed expression's value, whether an
equation holds, and the real roots of residual = 0 for one unknown. It never calls sympy.solve, whose
run time is unbounded: it uses closed-form roots when the unknown enters linearly or quadratically
(found by differentiating), inverts a single sin/cos/tan/square root around it, takes numeric roots of
polynomials up to degree 6, and otherwise runs a secant iteration of at most 60 steps.

Every costly sympy call is paid for first from the WorkBudget in force (`using(budget)`), in units
counted from the expression itself (its nodes and the digits of its numbers), never read off a clock:
the same step gets the same verdict on an idle machine and on a loaded one.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator, Mapping

import sympy

from theorem_bank.safe_math import degree_bound, substitute

PRECISION = 30           # digits for values a verdict depends on (residues compared with 1e-12)
DISPLAY_PRECISION = 15   # digits for values only shown, ranked or used as a size: a double holds them
_PRECISION, _DISPLAY_PRECISION = PRECISION, DISPLAY_PRECISION

# Work units: one unit is about one expression node built or evaluated (an evalf, a derivative, a
# substitution), some 20-60 microseconds of CPU. The checker's own tests and the synthetic curriculum
# need at most ~360 units for a step; hostile steps are stopped at 2,000, and a solution at 6,000
# (about 0.15 s of one CPU with sympy's caches cold): the limit decides, never a clock.
STEP_UNITS = 2_000
SOLUTION_UNITS = 6_000


class Unverifiable(Exception):
    """The step cannot be checked: unreadable, or more work than its budget allows. The message says which."""


class WorkBudget:
    """Units of checking work for one solution and for each of its steps, spent before the work is done."""

    def __init__(self, total: int = SOLUTION_UNITS, per_step: int = STEP_UNITS):
        self.total, self.per_step = total, per_step
        self.spent = self.step_spent = 0

    def start_step(self) -> None:
        self.step_spent = 0

    def spend(self, units: int, what: str) -> None:
        self.spent += units
        self.step_spent += units
        if self.spent > self.total:
            raise Unverifiable(f"too large to check: this solution's checking budget ({self.total:,} units) is "
                               f"spent ({what})")
        if self.step_spent > self.per_step:
            raise Unverifiable(f"too large to check: the step needs more than {self.per_step:,} units of "
                               f"checking work ({what})")


_BUDGET: contextvars.ContextVar[WorkBudget | None] = contextvars.ContextVar("work_budget", default=None)


@contextmanager
def using(budget: WorkBudget) -> Iterator[WorkBudget]:
    """Make `budget` pay for the solver's work in this thread until the block ends."""
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def spend(units: int, what: str) -> None:
    """Pay `units` from the budget in force (none in force: the caller bounds the work itself)."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(units, what)


def cost(expr: sympy.Expr) -> int:
    """Units to evaluate `expr`: its nodes, plus one per 64 bits of its exact numbers (big numbers make
    evalf work at high precision)."""
    units = 0
    for node in sympy.preorder_traversal(expr):
        units += 1
        if node.is_Rational:   # Integers included
            units += (int(node.p).bit_length() + int(node.q).bit_length()) // 64
    return units


def numeric(expr: sympy.Expr, digits: int = PRECISION) -> complex | None:
    """A closed expression as a complex number (None if it has symbols or does not evaluate).
    Rationals and Floats are converted directly; anything else is evaluated to `digits` digits."""
    if expr.free_symbols:
        return None
    try:
        if expr.is_Rational or expr.is_Float:
            return complex(float(expr))
        spend(cost(expr), "evaluating")
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


def holds(eq: sympy.Eq, replacement: Mapping[sympy.Symbol, sympy.Expr], tolerance: float = 1e-12) -> bool | None:
    """Does the equation hold after the replacement? Exact when the difference is rational."""
    if replacement:
        spend(cost(eq.lhs) + cost(eq.rhs), "substituting")
    lhs, rhs = substitute(eq.lhs, replacement), substitute(eq.rhs, replacement)
    difference = lhs - rhs
    if difference.is_Rational:
        return difference == 0
    value = numeric(difference)
    if value is None:
        return None
    # 30 significant digits are computed: a residue below 1e-12 of the sides' size is rounding, not error
    if abs(value) <= tolerance:
        return True   # the size of the sides is at least 1 in the comparison below: no need to evaluate it
    scale = [numeric(side, _DISPLAY_PRECISION) for side in (lhs, rhs)]
    return abs(value) <= tolerance * max([1.0] + [abs(v) for v in scale if v is not None])


def solve_for(residual: sympy.Expr, target: sympy.Symbol, near: complex | None) -> list[sympy.Expr]:
    """Real solutions of residual = 0 for target (other symbols must be gone), best candidate first."""
    roots = low_degree_roots(residual, target)
    if roots is None:
        roots = _peeled_roots(residual, target)
    if roots is None:
        spend(cost(residual), "clearing denominators")
        numerator = residual.as_numer_denom()[0]
        spend(cost(numerator), "solving")
        roots = low_degree_roots(numerator, target)
        if roots is None:
            roots = _polynomial_roots(numerator, target)
        if roots is None:
            root = _secant(residual, target, near)
            roots = [root] if root is not None else []
    real_roots = [r for r in roots if is_real(r)]

    def rank(r: sympy.Expr) -> tuple[int, float]:
        v = numeric(r, _DISPLAY_PRECISION).real
        return (0 if v > 0 else 1, abs(v - near.real) if near is not None else abs(v))
    return sorted(real_roots, key=rank)


def low_degree_roots(expr: sympy.Expr, t: sympy.Symbol) -> list[sympy.Expr] | None:
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
        spend(2 * cost(expr), "differentiating")
        d1 = expr.diff(t)
        if t not in d1.free_symbols:
            return [] if d1 == 0 else [-expr.xreplace({t: 0}) / d1]
        spend(2 * cost(d1), "differentiating")
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
    values = low_degree_roots(outer, z)
    if values is None:
        return None
    inside = holder.base if holder.is_Pow else holder.args[0]
    roots: list[sympy.Expr] = []
    for v in values:
        if not is_real(v):
            continue
        if holder.is_Pow:
            preimages = [v ** 2] if numeric(v).real >= 0 else []
        elif holder.func is sympy.sin:
            preimages = [sympy.asin(v), sympy.pi - sympy.asin(v)] if abs(numeric(v).real) <= 1 else []
        elif holder.func is sympy.cos:
            preimages = [sympy.acos(v), -sympy.acos(v)] if abs(numeric(v).real) <= 1 else []
        else:
            preimages = [sympy.atan(v)]
        for w in preimages:
            roots += low_degree_roots(inside - w, t) or []
    return roots


def _polynomial_roots(expr: sympy.Expr, t: sympy.Symbol) -> list[sympy.Expr] | None:
    """Numeric roots of a polynomial of degree 3..6 in t; None when expr is not such a polynomial."""
    if degree_bound(expr) > 6:
        return None   # Poly would expand it first: (t + 1)^999 has a thousand big coefficients
    spend(4 * cost(expr), "expanding a polynomial")
    try:
        poly = sympy.Poly(expr, t)
    except (sympy.PolynomialError, sympy.GeneratorsNeeded, ValueError, TypeError):
        return None
    if any(c.free_symbols for c in poly.coeffs()) or not 1 <= poly.degree() <= 6:
        return None
    return [sympy.Float(complex(r).real, 15) for r in poly.nroots(n=15, maxsteps=60) if abs(complex(r).imag) < 1e-10]


def is_real(value: sympy.Expr) -> bool:
    v = numeric(value)
    return v is not None and abs(v.imag) <= 1e-12 * max(1.0, abs(v.real))


def _secant(residual: sympy.Expr, target: sympy.Symbol, near: complex | None) -> sympy.Expr | None:
    units = cost(residual)

    def f(x: float) -> float | None:
        # evalf with subs evaluates numerically; xreplace would rebuild the tree through sympy's automatic
        # simplification (sin(k·x·π/180) looks for multiples of π: about 1.5 s for forty sines)
        spend(units, "numeric solving")
        try:
            value = residual.evalf(PRECISION, subs={target: sympy.Float(x, PRECISION)})
            re_part, im_part = (float(part) for part in value.as_real_imag())
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
            return None
        if re_part != re_part or abs(re_part) == float("inf") or abs(im_part) > 1e-9 * max(1.0, abs(re_part)):
            return None
        return re_part

    x0 = near.real if near is not None else 1.0
    x1 = x0 * 1.01 + 0.5
    f0, f1 = f(x0), f(x1)
    for _ in range(60):
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
