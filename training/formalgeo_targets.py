"""FormalGeo7k theorem sequences -> ⟨Cond, Map, Exec⟩ steps (the Theorem-SFT target) and the matched plain derivation.

Pipeline per problem: replay the annotated theorem sequence with formalgeo (training/formalgeo_replay.py), order
the applications so that each relation is used once its inputs are known, solve each relation for the one object
it determines, bind the bank theorem's roles to this problem's objects, and check the result with the solution
checker. A target is kept only if no step checks `wrong` and the derivation reaches the dataset's answer;
otherwise the problem is rejected with a reason. `build_targets` runs this over many problems in worker processes
with a per-problem time limit.
"""
from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import sympy

from training.formalgeo_replay import Application, Namer, ReplayError, as_sympy, format_value, relation_text, replay_problem

MAX_ROLE_PERMUTATIONS = 5040


@dataclass
class BuiltStep:
    theorem: str               # bank id
    name: str
    cond: str
    map: str
    exec: str
    formalgeo: str             # the FormalGeo theorem applied, e.g. "triangle_property_angle_sum(1,ABC)"
    plain: str                 # the same relation and value as a sentence of a worked derivation
    results: list[tuple[str, str]] = field(default_factory=list)  # (object, value text) this step yields

    def to_record(self) -> dict[str, str]:
        return {"theorem": self.theorem, "cond": self.cond, "map": self.map, "exec": self.exec}


@dataclass
class BuildResult:
    problem_id: int | None
    ok: bool
    reason: str = ""                     # reject reason (stable prefix before ':' so rejects can be counted)
    steps: list[BuiltStep] = field(default_factory=list)
    plain: str = ""
    statuses: list[str] = field(default_factory=list)  # checker status per step


# ------------------------------------------------------------------------------------------- bank side

class BankIndex:
    """The bank facts the builder needs, as plain data (so worker processes can receive it):
    FormalGeo name -> bank theorem, and each theorem's relations parsed once."""

    def __init__(self, theorems: list[dict]):
        self.theorems = {t["id"]: t for t in theorems}
        self.by_formalgeo: dict[str, dict] = {}
        for theorem in theorems:
            for alias in (theorem.get("aliases") or {}).get("formalgeo") or []:
                self.by_formalgeo.setdefault(alias, theorem)
        self._relations: dict[str, list[tuple[str, Any, list]]] = {}
        self._matches: dict[tuple, Any] = {}

    @classmethod
    def load(cls, bank=None) -> "BankIndex":
        """From a Bank (default: theorem_bank.open_bank())."""
        if bank is None:
            from theorem_bank import open_bank

            bank = open_bank()
        return cls(bank.all())

    def get(self, theorem_id: str):
        return self.theorems.get(theorem_id)

    def match(self, theorem: dict, expr):
        """(bank relation text, its roles, role -> object) for the first bank relation that `expr` instantiates.
        Cached by the relation's shape: the same FormalGeo theorem gives the same shape on every problem."""
        objects = sorted(expr.free_symbols, key=lambda s: s.name)
        placeholders = {obj: sympy.Symbol(f"_o{i}", **obj.assumptions0) for i, obj in enumerate(objects)}
        key = (theorem["id"], sympy.srepr(expr.xreplace(placeholders)))
        if key not in self._matches:
            self._matches[key] = None
            for number, (_text, rel_expr, role_syms) in enumerate(self.relations(theorem)):
                mapping = match_roles(rel_expr, role_syms, expr)
                if mapping is not None:
                    self._matches[key] = (number, [(role, objects.index(obj)) for role, obj in mapping.items()])
                    break
        cached = self._matches[key]
        if cached is None:
            return None
        number, pairs = cached
        text, _expr, role_syms = self.relations(theorem)[number]
        return text, role_syms, {role: objects[i] for role, i in pairs}

    def relations(self, theorem: dict) -> list[tuple[str, Any, list]]:
        """[(relation text, expr == 0 over role symbols, role symbols)] for a bank theorem."""
        if theorem["id"] not in self._relations:
            from theorem_bank.safe_math import MathError, parse_relation

            parsed = []
            roles = list(theorem.get("roles") or {})
            for text in theorem.get("relations") or []:
                try:
                    eqs = parse_relation(text)
                except MathError:
                    continue
                if len(eqs) != 1:
                    continue
                expr = eqs[0].lhs - eqs[0].rhs
                role_syms = [s for s in expr.free_symbols if s.name in roles]
                if role_syms and len(role_syms) == len(expr.free_symbols):
                    parsed.append((text, expr, sorted(role_syms, key=lambda s: roles.index(s.name))))
            self._relations[theorem["id"]] = parsed
        return self._relations[theorem["id"]]


def _sample_points(symbols, trials: int = 3) -> list[dict]:
    rng = random.Random(0)
    # Floats, not Rationals: sympy then evaluates as it substitutes, and matching stays cheap.
    return [{s: sympy.Float(rng.randint(7, 97) / rng.randint(3, 11)) for s in symbols} for _ in range(trials)]


def _value_at(expr, point) -> complex | None:
    try:
        value = expr.xreplace(point)
        return complex(value if value.is_Number else sympy.N(value))
    except (TypeError, ValueError, ZeroDivisionError, AttributeError):
        return None


def match_roles(relation_expr, role_syms: list, fg_expr) -> dict | None:
    """An assignment role -> object symbol under which the bank relation is the FormalGeo relation (up to a
    constant factor, tested at random rational points), else None. Also tries the relation with denominators
    cleared, since FormalGeo often states a ratio multiplied out."""
    objects = sorted(fg_expr.free_symbols, key=lambda s: s.name)
    if len(role_syms) != len(objects) or math.factorial(len(objects)) > MAX_ROLE_PERMUTATIONS:
        return None
    candidates = [relation_expr]
    numer, denom = sympy.fraction(sympy.together(relation_expr))
    if denom != 1:
        candidates.append(numer)
    points = _sample_points(objects)
    fg_values = [_value_at(fg_expr, point) for point in points]
    if any(v is None for v in fg_values):
        return None
    for perm in itertools.permutations(objects):
        for candidate in candidates:
            ratio, ok = None, True
            for point, fg_value in zip(points, fg_values):
                value = _value_at(candidate, {role: point[obj] for role, obj in zip(role_syms, perm)})
                if value is None:
                    ok = False
                    break
                if abs(fg_value) < 1e-12:
                    ok = abs(value) < 1e-7
                    if not ok:
                        break
                    continue
                r = value / fg_value
                if abs(r) < 1e-12 or (ratio is not None and abs(r - ratio) > 1e-7 * max(1.0, abs(ratio))):
                    ok = False
                    break
                ratio = r
            if ok and ratio is not None:
                return dict(zip(role_syms, perm))
    return None


# ------------------------------------------------------------------------------------------- scheduling

def _sym(name: str, kinds: dict[str, str]) -> sympy.Symbol:
    return sympy.Symbol(name, real=True) if kinds.get(name) == "Free" else sympy.Symbol(name, positive=True)


def _pick_root(solutions: list, expected) -> Any:
    real = [s for s in solutions if s.is_real is not False]
    if expected is not None:
        for s in real:
            try:
                if abs(complex(sympy.N(s - expected))) < 1e-6:
                    return s
            except (TypeError, ValueError):
                continue
        return None
    positive = [s for s in real if s.is_positive]
    return positive[0] if len(positive) == 1 else (real[0] if len(real) == 1 else None)


def _solve_single(residual, target, expected):
    """The value of `target` that makes residual zero: the solver's own value when it fits (no sympy.solve
    needed), the linear solution, or a root picked from sympy.solve."""
    if expected is not None:
        value = _value_at(residual, {target: expected})
        if value is not None and abs(value) < 1e-7 * max(1.0, abs(complex(sympy.N(expected)))):
            return expected
    slope = sympy.diff(residual, target)
    if slope != 0 and target not in slope.free_symbols:
        return sympy.expand(-(residual - slope * target) / slope)
    try:
        return _pick_root(sympy.solve(residual, target), expected)
    except (NotImplementedError, ValueError, TypeError):
        return None


@dataclass
class Planned:
    app: Application
    # per relation: (relation expr, {object: value known and substituted}, [(object, value, how)])
    relations: list[tuple[Any, dict[str, Any], list[tuple[str, Any, str]]]]


def plan(replay, kinds: dict[str, str]) -> tuple[list[Planned], dict[str, Any]]:
    """Order the applications and derive, step by step, what each one yields.

    An application whose relations all have two or more unknowns is postponed (if it states no new fact a later
    step might need) until the values it needs are known; when nothing can move, the next one is taken and
    the relations gathered so far are solved together ("system").
    """
    known: dict[str, Any] = dict(replay.initial_known)
    final = replay.final_values
    symbols = {}

    def sym(name):
        if name not in symbols:
            symbols[name] = _sym(name, kinds)
        return symbols[name]

    def substitute(expr):
        return expr.xreplace({s: known[s.name] for s in expr.free_symbols if s.name in known})

    def settle(name, value):
        known[name] = value
        # A free variable just found makes every expression written in it a number.
        for other, val in list(known.items()):
            if isinstance(val, sympy.Expr) and sym(name) in val.free_symbols:
                known[other] = sympy.simplify(val.xreplace({sym(name): value}))

    pending = list(range(len(replay.applications)))
    emitted: set[int] = set()
    planned: list[Planned] = []

    def ready(app: Application) -> bool:
        if not app.relations:
            return True
        return any(len(substitute(r.expr).free_symbols) <= 1 for r in app.relations)

    while pending:
        # Only applications whose recorded premises are all in place may go next; among those, one that
        # yields a value now goes first, so that each Exec has its inputs known when it is read.
        available = [i for i in pending if replay.applications[i].depends_on <= emitted] or pending[:1]
        choice = next((i for i in available if ready(replay.applications[i])), available[0])
        pending.remove(choice)
        emitted.add(choice)
        app = replay.applications[choice]
        rows = []
        for relation in app.relations:
            used = {s.name: known[s.name] for s in relation.expr.free_symbols if s.name in known}
            residual = substitute(relation.expr)
            yields = []
            unknown = sorted(residual.free_symbols, key=lambda s: s.name)
            if len(unknown) == 1:
                target = unknown[0]
                value = _solve_single(residual, target, final.get(target.name))
                if value is not None:
                    settle(target.name, value)
                    yields.append((target.name, value, "direct"))
            rows.append((relation.expr, used, yields))
        # Values the solver got by combining this step's relations with earlier ones (a small system): they are
        # known once every application they rest on has been stated.
        for name, value, needs in replay.derived:
            if name not in known or known[name].free_symbols:
                if needs <= emitted:
                    settle(name, value)
                    if rows:
                        rows[-1][2].append((name, value, "system"))
        planned.append(Planned(app=app, relations=rows))
    return planned, known


# ------------------------------------------------------------------------------------------- rendering

def _value_text(name: str, value, kinds: dict[str, str]) -> str:
    return format_value(value, degrees=kinds.get(name) in ("MeasureOfAngle", "MeasureOfArc"))


_TRIG_RADIANS = re.compile(r"\b(sin|cos|tan)\(pi\*([^()]+?)/180\)")


def _pretty(text: str) -> str:
    # formalgeo keeps trig arguments in radians; the safe grammar reads sin(∠ABC) in degrees, which reads better.
    return _TRIG_RADIANS.sub(r"\1(\2)", text)


def _degree_constants(relation: str, theorem: dict, role_syms: list) -> str:
    """"angle1 + angle2 = 180" -> "angle1 + angle2 = 180°" when every role in it is an angle (as DESIGN.md writes)."""
    roles = theorem.get("roles") or {}
    if role_syms and all((roles.get(r.name) or {}).get("unit") == "degree" for r in role_syms):
        # only additive constants are angles: "central / 2" keeps its plain 2
        return re.sub(r"(?<![\w.^*/])(?<![*/^] )(\d+(?:\.\d+)?)(?![\w.°(])(?!\s*[*/^])", r"\1°", relation)
    return relation


def _cond_text(app: Application) -> str:
    if app.facts and not app.relations and app.equations_used:
        # A judgment (AA similarity, right triangle from a right angle) rests on equalities: state them.
        return "; ".join(app.premises + app.equations_used)
    if app.premises:
        return "; ".join(app.premises)
    # Nothing but points, lines and angles was used: name the figure the theorem was applied to.
    if app.entities:
        return "; ".join(app.entities)
    letters = "".join(app.params)
    return f"applied to {letters}" if letters else ""


def render_steps(planned: Planned, theorem: dict, index: BankIndex, kinds: dict[str, str]) -> list[BuiltStep]:
    """One step per relation the application concluded (one relation per Exec keeps each step checkable),
    or one step stating the fact for an application that concludes only facts."""
    app = planned.app
    formalgeo = f"{app.theorem}({','.join(filter(None, [app.branch, ''.join(app.params)]))})"
    cond = _pretty(_cond_text(app))
    namer = _KindsNamer(kinds)
    base = dict(theorem=theorem["id"], name=theorem.get("name", ""), cond=cond, formalgeo=formalgeo)
    if not planned.relations:
        facts = "; ".join(app.facts)
        return [BuiltStep(map="", exec=facts, plain=f"{facts}." if facts else "", **base)]
    relations = planned.relations
    if len(relations) > 1 and any(yields for _, _, yields in relations):
        relations = [r for r in relations if r[2]]  # a relation that yields nothing here adds only noise
    steps = []
    for expr, used, yields in relations:
        objects_text = _pretty(relation_text(expr, namer))
        outcome = "; ".join(f"{name} = {_value_text(name, value, kinds)}" for name, value, _ in yields)
        roles = None
        found = index.match(theorem, expr)
        if found is not None:
            rel_text, role_syms, mapping = found
            roles = (_degree_constants(rel_text, theorem, role_syms), mapping)
        if roles:
            rel_text, mapping = roles
            entries = []
            for role, obj in mapping.items():
                entry = f"{role.name} = {obj.name}"
                if obj.name in used:
                    entry += f" = {_value_text(obj.name, used[obj.name], kinds)}"
                entries.append(entry)
            map_text, exec_relation = "; ".join(entries), rel_text
        else:
            # The bank's relation is not this relation's shape: state it over the objects themselves.
            map_text = "; ".join(f"{name} = {_value_text(name, value, kinds)}" for name, value in sorted(used.items()))
            exec_relation = objects_text
        exec_text = f"{exec_relation} => {outcome}" if outcome else exec_relation
        trivial = len(expr.free_symbols) == 1 and len(yields) == 1 and not used
        if trivial:
            plain = f"{objects_text}."
        else:
            plain = f"{objects_text}, so {outcome}." if outcome else f"{objects_text}."
        steps.append(BuiltStep(map=map_text, exec=exec_text, plain=plain,
                               results=[(n, _value_text(n, v, kinds)) for n, v, _ in yields], **base))
    return steps


class _KindsNamer:
    """relation_text only needs to know which names are angles; this answers from the recorded kinds."""

    def __init__(self, kinds):
        self.kinds = kinds

    def is_degree(self, name):
        return self.kinds.get(name) in ("MeasureOfAngle", "MeasureOfArc")


# ------------------------------------------------------------------------------------------- one problem

def answer_value(text: str):
    from theorem_bank.safe_math import MathError, to_sympy

    # formalgeo writes inverse trig answers in radians (180*acos(v)/pi); the safe grammar's acos is in degrees.
    text = re.sub(r"180\*(a(?:sin|cos|tan))\(([^()]*(?:\([^()]*\)[^()]*)*)\)/pi", r"\1(\2)", str(text))
    try:
        return to_sympy(text)
    except MathError:
        return None


def _close(a, b) -> bool:
    # formalgeo's own tolerance (rough_equal) is 0.001; dataset answers are sometimes rounded decimals.
    try:
        return abs(complex(sympy.N(a - b))) < 1e-3 * max(1.0, abs(complex(sympy.N(b))))
    except (TypeError, ValueError):
        return False


def build_problem(problem: dict[str, Any], gdl_dir: str | Path, index: BankIndex, check=None) -> BuildResult:
    """One FormalGeo problem (its original JSON fields) -> verified steps, or a reject reason."""
    pid = problem.get("problem_id")
    if not problem.get("theorem_seqs"):
        return BuildResult(pid, False, "empty theorem sequence: the answer follows from the givens alone")
    missing = sorted({name.split("(")[0] for name in problem["theorem_seqs"]} - set(index.by_formalgeo))
    if missing:
        return BuildResult(pid, False, f"no bank theorem for formalgeo theorem: {missing[0]}")
    try:
        replay = replay_problem(problem, gdl_dir)
    except ReplayError as err:
        return BuildResult(pid, False, f"replay failed: {err}")
    if not replay.solved:
        return BuildResult(pid, False, f"replay does not reach the answer: solver got {replay.goal_value}, "
                                       f"dataset says {problem.get('problem_answer')}")
    refused = [a.theorem for a in replay.applications if not a.applied and not a.relations and not a.facts]
    kinds = _kinds(replay)
    planned, known = plan(replay, kinds)
    gold = answer_value(problem.get("problem_answer", ""))
    if gold is None:
        return BuildResult(pid, False, f"answer not readable: {problem.get('problem_answer')!r}")
    if replay.goal_expr is None:
        return BuildResult(pid, False, "goal is not a value (logic goal)")
    goal_now = replay.goal_expr.xreplace({s: known[s.name] for s in replay.goal_expr.free_symbols if s.name in known})
    if goal_now.free_symbols and replay.goal_value is not None and isinstance(replay.goal_expr, sympy.Symbol):
        # The solver found the goal only by solving all the relations together at the end (solve_target).
        last = next((p for p in reversed(planned) if p.relations), None)
        if last is not None:
            last.relations[-1][2].append((replay.goal_expr.name, as_sympy(replay.goal_value), "system"))
            goal_now = as_sympy(replay.goal_value)
    if goal_now.free_symbols and not isinstance(replay.goal_expr, sympy.Symbol):
        # A composite goal (BE/AB, ∠DFE + ∠FED): the solver evaluated it from the relations stated; the
        # Answer line carries its value.
        goal_now = as_sympy(replay.goal_value)
    if goal_now.free_symbols or not _close(goal_now, gold):
        return BuildResult(pid, False, f"steps do not determine the goal: {replay.goal_text} stays "
                                       f"{sympy.sstr(goal_now)}" + (f" (refused: {refused[0]})" if refused else ""))
    steps = []
    for item in planned:
        if not item.app.relations and not item.app.facts:
            continue  # the solver refused it or it added nothing new: not part of the derivation
        steps.extend(render_steps(item, index.by_formalgeo[item.app.theorem], index, kinds))
    plain = "\n".join(s.plain for s in steps if s.plain)
    result = BuildResult(pid, True, steps=steps, plain=plain)
    if check is not None:
        statuses, problem_text = check(steps)
        result.statuses = statuses
        if problem_text:
            result.ok, result.reason = False, problem_text
    return result


def _kinds(replay) -> dict[str, str]:
    return replay.kinds


# ------------------------------------------------------------------------------------------- many problems

_WORKER: dict[str, Any] = {}


def _init_worker(theorems: list[dict], gdl_dir: str, timeout: float, check_steps: bool) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    _WORKER.update(index=BankIndex(theorems), gdl=gdl_dir, timeout=timeout,
                   check=make_checker(PlainBank(theorems)) if check_steps else None)


def _build_one(problem: dict[str, Any]) -> BuildResult:
    from func_timeout import FunctionTimedOut, func_timeout

    try:
        return func_timeout(_WORKER["timeout"], build_problem,
                            args=(problem, _WORKER["gdl"], _WORKER["index"], _WORKER["check"]))
    except FunctionTimedOut:
        return BuildResult(problem.get("problem_id"), False, f"timed out after {_WORKER['timeout']:g} s")
    except Exception as err:  # noqa: BLE001 - one odd problem must not stop a 7k-problem build; it is counted
        return BuildResult(problem.get("problem_id"), False, f"builder error: {type(err).__name__}: {err}")


from theorem_bank.schema import TheoremLookup as PlainBank  # noqa: E402 - the one in-memory bank


def make_checker(bank):
    """check(steps) -> (statuses, reject reason or ""), using model.checker.check_solution."""
    from model.checker import check_solution
    from model.solution_format import Solution, Step

    def check(steps: list[BuiltStep]):
        solution = Solution(steps=[Step(theorem=s.theorem, name=s.name, cond=s.cond, map=s.map, exec=s.exec)
                                   for s in steps], answer=None)
        results = check_solution(solution, bank=bank)
        statuses = [r.status for r in results]
        for number, r in enumerate(results, 1):
            if r.status == "wrong":
                return statuses, f"step checks wrong: {steps[number - 1].theorem}: {r.reason}"
        return statuses, ""

    return check


def build_targets(problems: Iterable[dict[str, Any]], gdl_dir: str | Path, theorems: list[dict], *,
                  workers: int = 2, timeout: float = 30.0, check_steps: bool = True,
                  progress: bool = True) -> Iterator[BuildResult]:
    """BuildResults as they finish (match them by problem_id). Each problem runs in a worker process under a time limit, because the
    formalgeo equation solver can take very long on a few problems."""
    problems = list(problems)
    args = (theorems, str(gdl_dir), timeout, check_steps)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(problems), desc="formalgeo targets", unit="problem", mininterval=2)
    try:
        if workers <= 1:
            _init_worker(*args)
            for problem in problems:
                yield _build_one(problem)
                if bar:
                    bar.update()
            return
        import multiprocessing

        context = multiprocessing.get_context("fork" if hasattr(multiprocessing, "get_context") else None)
        # maxtasksperchild bounds memory: sympy caches grow with every problem a worker sees.
        with context.Pool(workers, initializer=_init_worker, initargs=args, maxtasksperchild=200) as pool:
            # Unordered, so a slow problem never holds back the ones behind it; callers match by problem_id.
            for result in pool.imap_unordered(_build_one, problems, chunksize=2):
                yield result
                if bar:
                    bar.update()
    finally:
        if bar:
            bar.close()


def reason_key(reason: str) -> str:
    """The countable part of a reject reason ("no bank theorem for formalgeo theorem: X" -> up to ':')."""
    return reason.split(":", 1)[0] if reason else ""
