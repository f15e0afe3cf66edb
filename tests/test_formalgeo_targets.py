"""FormalGeo replay -> ⟨Cond, Map, Exec⟩ steps: the pieces, a fixture GDL end to end, and real problems."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy

from model.checker import check_solution
from model.solution_format import Solution, Step
from training.formalgeo_replay import Application, Relation, Replay, fact_text, format_value
from training.formalgeo_targets import BankIndex, answer_value, build_problem, make_checker, match_roles, plan

FIXTURES = Path(__file__).parent / "fixtures" / "data" / "formalgeo"
GDL = FIXTURES / "gdl"   # a minimal GDL written for the fixtures (three theorems)


@pytest.fixture(scope="module")
def theorems():
    from training.data.build import bank_theorems

    return bank_theorems()   # cached for the session: the CLI tests build with the same list


@pytest.fixture(scope="module")
def index(theorems):
    return BankIndex(theorems)


@pytest.fixture(scope="module")
def checker(theorems):
    from training.formalgeo_targets import PlainBank

    return make_checker(PlainBank(theorems))


def _problem(pid: int) -> dict:
    return json.loads((FIXTURES / "problems" / f"{pid}.json").read_text(encoding="utf-8"))


def test_roles_are_matched_to_objects_up_to_rearrangement():
    a1, a2, a3 = sympy.symbols("angle1 angle2 angle3")
    x, y, z = (sympy.Symbol(n, positive=True) for n in ("∠BCA", "∠DBC", "∠EAD"))
    mapping = match_roles(a1 + a2 + a3 - 180, [a1, a2, a3], 180 - x - y - z)
    assert mapping is not None and set(mapping.values()) == {x, y, z}
    # a relation of another shape does not match, whatever the assignment
    assert match_roles(a1 + a2 - 180, [a1, a2], x - y) is None
    # a ratio written multiplied out still matches (denominators cleared)
    s1, s2, t1, t2 = sympy.symbols("a1 b1 a2 b2")
    p, q, r, s = (sympy.Symbol(n, positive=True) for n in ("AB", "DE", "BC", "EF"))
    assert match_roles(s1 / t1 - s2 / t2, [s1, s2, t1, t2], p * s - q * r) is not None


def test_values_and_facts_read_like_a_textbook():
    assert format_value(sympy.Integer(40), degrees=True) == "40°"
    assert format_value(2 * sympy.sqrt(3)) == "2*sqrt(3)"
    # formalgeo's radians-based inverse trig becomes the safe grammar's degree-valued acos
    assert format_value(180 * sympy.acos(sympy.Rational(4, 5)) / sympy.pi) == "acos(4/5)"
    assert abs(float(answer_value("180*acos(4/5)/pi")) - 36.8699) < 1e-3   # degrees, not 180/pi times degrees
    assert fact_text("ParallelBetweenLine", tuple("DEBC")) == "DE ∥ BC"
    assert fact_text("Polygon", tuple("ABC")) == "△ABC"
    assert fact_text("SimilarBetweenTriangle", tuple("ABCDEF")) == "△ABC ∼ △DEF"
    assert fact_text("Angle", tuple("ABC")) is None
    from training.formalgeo_targets import _degree_constants

    angles = {"roles": {"central": {"unit": "degree"}, "inscribed": {"unit": "degree"}}}
    roles = list(sympy.symbols("central inscribed"))
    assert _degree_constants("inscribed = central / 2", angles, roles) == "inscribed = central / 2"
    assert _degree_constants("central + inscribed = 180", angles, roles) == "central + inscribed = 180°"


def _app(name, relations=(), facts=(), depends=()):
    return Application(theorem=name, branch="1", params=(), premises=[], relations=list(relations), facts=list(facts),
                       known_before={}, known_after={}, applied=True, depends_on=set(depends))


def test_plan_waits_for_inputs_but_never_before_its_premises():
    a, b, c = (sympy.Symbol(n, positive=True) for n in ("∠A", "∠B", "∠C"))
    first = _app("uses_b_and_c", [Relation("", a - b / 2, [], None)])            # two unknowns when reached
    second = _app("gives_b", [Relation("", b + 40 - 180, [], None)])           # yields ∠B = 140
    third = _app("needs_second", [Relation("", c - b, [], None)], depends={1})
    replay = Replay(problem_id=1, applications=[first, second, third], goal_text="∠A", goal_expr=a, goal_value=70,
                    solved=True, initial_known={}, given_relations=[], final_values={"∠A": 70, "∠B": 140, "∠C": 140},
                    kinds={"∠A": "MeasureOfAngle", "∠B": "MeasureOfAngle", "∠C": "MeasureOfAngle"})
    planned, known = plan(replay, replay.kinds)
    order = [p.app.theorem for p in planned]
    assert order.index("gives_b") < order.index("uses_b_and_c")      # postponed until ∠B is known
    assert order.index("gives_b") < order.index("needs_second")      # recorded dependency respected
    assert known["∠A"] == 70 and known["∠C"] == 140
    yields = {p.app.theorem: p.relations[0][2] for p in planned}
    assert yields["uses_b_and_c"] == [("∠A", 70, "direct")]


def test_fixture_problems_build_verified_targets(index, checker):
    parallel = build_problem(_problem(101), GDL, index, checker)
    assert parallel.ok, parallel.reason
    assert [s.theorem for s in parallel.steps] == ["triangle_angle_sum", "parallel_co_interior_angles"]
    assert parallel.statuses == ["verified", "verified"]
    last = parallel.steps[-1]
    assert last.cond == "RQ ∥ TS"
    assert last.map == "angle1 = ∠QRP = 60°; angle2 = ∠RTS"
    assert last.exec == "angle1 + angle2 = 180° => ∠RTS = 120°"
    assert parallel.plain.splitlines()[-1] == "∠QRP + ∠RTS = 180°, so ∠RTS = 120°."
    # a free variable: the Map carries the given expressions and the step solves for x
    algebra = build_problem(_problem(102), GDL, index, checker)
    assert algebra.ok and algebra.statuses == ["verified"]
    assert algebra.steps[0].exec.endswith("=> x = 7")
    # the rendered steps read back through the format and check the same way
    solution = Solution(steps=[Step(s.theorem, s.name, s.cond, s.map, s.exec) for s in parallel.steps], answer="120")
    assert [c.status for c in check_solution(solution, bank=index)] == ["verified", "verified"]


def test_unbuildable_problems_are_rejected_with_reasons(index, checker, tmp_path):
    assert build_problem(_problem(103), GDL, index, checker).reason.startswith("empty theorem sequence")
    wrong_answer = dict(_problem(101), problem_answer="130")
    result = build_problem(wrong_answer, GDL, index, checker)
    assert not result.ok and result.reason.startswith("replay does not reach the answer")
    unknown = dict(_problem(101), theorem_seqs=["no_such_theorem(1,ABC)"])
    assert build_problem(unknown, GDL, index, checker).reason == "no bank theorem for formalgeo theorem: no_such_theorem"


@pytest.mark.shared_data
def test_real_problems_reach_the_answer_with_no_wrong_step(shared_data, index, checker):
    rows = {}
    with (shared_data / "formalgeo7k_v1" / "problems_all.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["problem_id"] in (2849, 6918, 1):
                rows[row["problem_id"]] = row
    gdl = shared_data / "formalgeo7k_v1" / "gdl"
    for pid, first_theorem in ((2849, "triangle_angle_sum"), (6918, "angle_in_semicircle"),
                               (1, "congruent_corresponding_angles")):
        result = build_problem(rows[pid], gdl, index, checker)
        assert result.ok, (pid, result.reason)
        assert "wrong" not in result.statuses and result.statuses[-1] == "verified"
        assert result.steps[0].theorem == first_theorem
