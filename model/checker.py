"""Symbolic checking of Exec steps: does the stated result follow from the Map values and the relation?

A step's Map binds roles to objects and values ("angle1 = ∠EGB = 50°; angle2 = ∠GHD"); its Exec
states a relation and a conclusion ("angle2 = angle1 => ∠GHD = 50°"). The checker renames roles to
their objects, substitutes every known value (from this Map and from earlier steps' conclusions),
puts the stated value in for the concluded object and decides:

- verified: the relation holds (exactly for exact values; within the rounding of a decimal value),
- wrong: it does not (the reason says what the correct value is), or the relation is not the
  theorem's relation when the bank knows the theorem,
- unverifiable: the text cannot be read or checked (an unknown is left, a size limit was hit...).

Bounded without signals or clocks (the app checks from worker threads, and a verdict must not depend on
how loaded the machine is): every expression goes through theorem_bank.safe_math, whose caps on length,
tokens, nesting, digits, exponents, degrees and factorials keep each sympy object small, and the stated
value is substituted while building, inside those caps. What remains (evaluating, solving) is paid for
from a deterministic WorkBudget (model.solver): one per step and one per solution, so twelve costly steps
cost at most one solution's budget, and a step past it is "unverifiable: too large to check".
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import sympy

from model import solver
from model.solution_format import Solution, Step
from model.solver import DISPLAY_PRECISION as _DISPLAY_PRECISION
from model.solver import Unverifiable as _Unverifiable
from model.solver import WorkBudget
from model.solver import holds as _holds
from model.solver import low_degree_roots as _low_degree_roots  # noqa: F401 - tests and callers use this name
from model.solver import numeric as _numeric
from model.solver import solve_for as _solve_for
from theorem_bank.safe_math import (MathError, canonical_name, degree_bound, name_of, parse_relation, split_relation,
                                    substitute, to_sympy)

VERIFIED, WRONG, UNVERIFIABLE = "verified", "wrong", "unverifiable"
MAX_EXEC_CHARS = 2000
MAX_COMPARED_DEGREE = 12   # an Exec relation compared with the theorem's by algebra (cancel expands it)
_ARROW_RE = re.compile(r"=>|⇒|⟹|⟾|⇨|→|∴")
_DECIMAL_RE = re.compile(r"\d\.\d")


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
    if len(text or "") > MAX_EXEC_CHARS:
        raise _Unverifiable(f"Map is {len(text)} characters; the limit is {MAX_EXEC_CHARS}")
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
            solver.spend(solver.cost(value), "reading the Map")
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


# --- numbers and solving live in model.solver -------------------------------------------------------

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
            # numbers written into the Exec in place of roles: put the same values into the theorem's relation,
            # rebuilt by safe_math so that the values go in under its size guards (bank seeds are untrusted too)
            candidates = _with_values(theirs_texts, {s.name: v for s, v in role_values.items() if s not in mine})
            comparable = [c for c in candidates if c.free_symbols == mine]
            if not comparable:
                if any(mine <= t.free_symbols for t in theirs):
                    continue   # the Map lacks the values that would make them comparable
                return f"the relation {text.strip()!r} is not the theorem's relation ({shown})"
            if not any(_equivalent(residual, c) for c in comparable):
                return (f"the relation {text.strip()!r} is not the theorem's relation ({shown}) "
                        f"with the roles mapped as in Map")
    return None


def _with_values(texts: tuple[str, ...], values: dict[str, sympy.Expr]) -> list[sympy.Expr]:
    """The theorem's residuals with some roles' values put in (a relation too large with them is left out)."""
    residuals = []
    for text in texts:
        try:
            residuals += [eq.lhs - eq.rhs for eq in parse_relation(text, values)]
        except MathError:
            continue
    return residuals


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


def _equivalent(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Same equation up to rearrangement: a constant multiple, or each vanishes wherever the other does.
    Its work is paid from the step's budget on every call, cached or not, so a verdict never depends on
    what was checked before."""
    same, units = _equivalent_priced(a, b)
    solver.spend(units, "comparing with the theorem's relation")
    if same is None:
        raise _Unverifiable("too large to check: the relation is too large to compare with the theorem's")
    return same


@lru_cache(maxsize=4096)
def _equivalent_priced(a: sympy.Expr, b: sympy.Expr) -> tuple[bool | None, int]:
    """(equivalent, or None when the comparison is too large; units of work it took)."""
    if a.free_symbols != b.free_symbols:
        return False, 1
    if max(degree_bound(a), degree_bound(b)) > MAX_COMPARED_DEGREE:
        return None, 1   # cancel() expands: (x + y + 1)^999 would have half a million terms
    own = WorkBudget(solver.STEP_UNITS, solver.STEP_UNITS)
    try:
        with solver.using(own):
            solver.spend(8 * (solver.cost(a) + solver.cost(b)), "cancelling")
            ratio = sympy.cancel(sympy.fraction(sympy.together(a))[0] / sympy.fraction(sympy.together(b))[0])
            if not ratio.free_symbols and ratio != 0:
                return True, own.spent
            return _implies(a, b) and _implies(b, a), own.spent
    except _Unverifiable:
        return None, own.spent


def _implies(a: sympy.Expr, b: sympy.Expr) -> bool:
    """b = 0 at sampled points where a = 0 (solving a for one symbol at random values of the others)."""
    rng = random.Random(0)
    symbols = sorted(a.free_symbols, key=lambda s: s.name)
    for solve_for in symbols:
        for _ in range(2):
            point = {s: sympy.Rational(rng.randint(20, 80), rng.choice((3, 7, 11))) for s in symbols if s != solve_for}
            roots = _solve_for(a.xreplace(point), solve_for, None)
            if not roots:
                break
            # roots may be numeric (double precision), hence the looser tolerance; they go in as 30-digit
            # floats, so no exact root can grow a huge number inside b
            if not any(_holds(sympy.Eq(b, 0, evaluate=False),
                              {**point, solve_for: sympy.Float(_numeric(r).real, 30)}, 1e-8) for r in roots):
                return False
        else:
            return True
    return False


# --- checking -----------------------------------------------------------------------------------------

def check_step(step: Step, bank: Any = None, known: dict | None = None, carry: bool = False,
               budget: WorkBudget | None = None) -> StepCheck:
    """Check one step. `known` maps object names (e.g. "∠GHD") to values established earlier; with `carry` they
    override the values the Map writes for the same objects (see execute_solution). `budget` is the solution's
    work budget (check_solution passes one); alone, a step gets a step's budget."""
    budget = budget or WorkBudget(total=solver.STEP_UNITS)
    budget.start_step()
    try:
        with solver.using(budget):
            return _check_step(step, bank, known or {}, carry)
    except _Unverifiable as err:
        return StepCheck(UNVERIFIABLE, str(err))
    except MathError as err:
        return StepCheck(UNVERIFIABLE, f"cannot read the Exec: {err}")
    except Exception as err:  # noqa: BLE001 - sympy raises many types; the app must always get a verdict
        return StepCheck(UNVERIFIABLE, f"could not be checked ({type(err).__name__}: {str(err)[:80]})")


def _check_step(step: Step, bank: Any, known: Mapping, carry: bool = False) -> StepCheck:
    solver.spend(1, "reading")   # a solution whose budget is spent checks no more steps
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

    facts: dict[str, str] = {}
    derived: dict[str, str | None] = {}
    expected_texts: list[str] = []
    wrong: list[str] = []
    for conclusion in conclusions:
        target = binding.roles.get(conclusion.target, conclusion.target)
        verdict, expected, stated, derived[target] = _check_conclusion(target, conclusion, relations, binding)
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


def _check_conclusion(target: str, conclusion: _Conclusion, relations: list[str], binding: _Binding
                      ) -> tuple[str | None, str | None, str, str | None]:
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
    # The same equations with the stated value put in while building, so that the size guards see what the
    # substitution makes: factorial(∠B) with ∠B = 10000000 is refused, not computed.
    # building costs too (sympy's automatic simplification of each node): paid by the size of what was built
    solver.spend(sum(solver.cost(eq.lhs) + solver.cost(eq.rhs) for eq in equations), "reading the relation")
    put_in = {target_symbol: stated}
    checked = [sympy.Eq(substitute(eq.lhs, put_in), substitute(eq.rhs, put_in), evaluate=False) for eq in equations]

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
    for eq, at_value in zip(equations, checked):
        holds = _holds(at_value, {})
        if holds is None:
            raise _Unverifiable(f"the relation cannot be evaluated at {shown} = {stated_text}")
        if holds:
            continue
        candidates = _solve_for(eq.lhs - eq.rhs, target_symbol, near)
        if not candidates:
            return f"{shown} = {stated_text} does not satisfy the relation", None, stated_text, None
        best = candidates[0]
        if tolerance is not None and near is not None and abs(_numeric(best).real - near.real) <= tolerance:
            continue
        expected = _show(best)
        return (f"{shown} = {stated_text} is wrong: the relation gives {shown} = {expected}", expected, stated_text,
                _grammar_text(best))
    return None, None, stated_text, stated_text


def check_solution(solution: Solution, bank: Any = None, budget: WorkBudget | None = None) -> list[StepCheck]:
    """Check every step in order; each step's stated conclusions are known to the steps after it. All steps
    share one solution's work budget (`budget`, default a fresh one): past it, steps are unverifiable."""
    known: dict[str, sympy.Expr] = {}
    results = []
    budget = budget or WorkBudget()
    for step in solution.steps:
        result = check_step(step, bank, known, budget=budget)
        results.append(result)
        for obj, value_text in result.facts.items():
            try:
                known[obj] = to_sympy(value_text, known)
            except MathError:
                continue
            if known[obj].free_symbols:
                del known[obj]
    return results


def execute_solution(solution: Solution, bank: Any = None, budget: WorkBudget | None = None) -> list[StepCheck]:
    """The tutor's own run of the chain: every step's Exec relation is executed with its Map bindings, and an
    object an earlier step concluded carries the value that step's execution gave, not the number the model
    wrote for it. The model chooses the theorems and binds their roles; sympy does the arithmetic. The last
    step's `derived` is the tutor's answer. Verdicts here judge the chain, not the model's own writing: use
    check_solution for the badges on the steps the model wrote."""
    known: dict[str, sympy.Expr] = {}
    results = []
    budget = budget or WorkBudget()
    for step in solution.steps:
        result = check_step(step, bank, known, carry=True, budget=budget)
        results.append(result)
        for obj, value_text in result.derived_facts.items():
            try:
                value = to_sympy(value_text, known)
            except MathError:
                continue
            if not value.free_symbols:
                known.setdefault(obj, value)
    return results
