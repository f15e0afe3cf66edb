"""Exec checking: a hand-written table of steps with the verdict and the correct value they must get."""
from pathlib import Path

import pytest
import sympy
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from model import checker
from model.checker import StepCheck, check_solution, check_step
from model.solution_format import Step, parse
from theorem_bank.safe_math import to_sympy

SEEDS = Path(__file__).resolve().parents[1] / "theorem_bank" / "seeds" / "geometry_core.yaml"


class YamlBank:
    """The seed theorems straight from the YAML: the checker needs only .get(id)."""

    def __init__(self):
        self.theorems = {t["id"]: t for t in yaml.safe_load(SEEDS.read_text(encoding="utf-8"))}

    def get(self, theorem_id):
        return self.theorems.get(theorem_id)


BANK = YamlBank()
V, W, U = "verified", "wrong", "unverifiable"
LP = "angle1 = ∠GHD = 50°; angle2 = ∠GHC"
TRI = "angle1 = ∠A = 50°; angle2 = ∠B = 60°; angle3 = ∠C"
PY = "a = BC = 3; b = AC = 4; c = AB"
PY2 = "a = BC = 2; b = AC = 2; c = AB"
CIRC = "r = OA = 3; circumference = C"
AREA = "r = OA = 3; area = S"
SIN = "angle = ∠A; opposite = BC = 3; hypotenuse = AB = 6"
SIM = "a1 = AB = 4; b1 = BC = 6; a2 = DE = 8; b2 = EF"
INS = "central = ∠AOB = 100°; inscribed = ∠ACB"
REG = "n = 6; angle = ∠A"
EXT = "exterior = ∠ACD; remote1 = ∠A = 50°; remote2 = ∠B = 60°"
TAN = "angle = ∠A = 45°; opposite = BC = 5; adjacent = AC"
COS = "angle = ∠B = 60°; adjacent = BC; hypotenuse = AB = 8"

CASES = [
    # theorem, Map, Exec, status, correct value (for wrong steps)
    ("linear_pair", LP, "angle1 + angle2 = 180° => ∠GHC = 130°", V, None),
    ("parallel_corresponding_angles", "angle1 = ∠EGB = 50°; angle2 = ∠GHD", "angle2 = angle1 => ∠GHD = 50°", V, None),
    ("triangle_angle_sum", TRI, "angle1 + angle2 + angle3 = 180° => ∠C = 70°", V, None),
    ("triangle_angle_sum", TRI, "∠A + ∠B + ∠C = 180° => ∠C = 70°", V, None),
    ("triangle_exterior_angle", EXT, "exterior = remote1 + remote2 => ∠ACD = 110°", V, None),
    ("isosceles_base_angles", "base_angle1 = ∠B = 65°; base_angle2 = ∠C", "base_angle2 = base_angle1 => ∠C = 65°", V, None),
    ("equilateral_triangle_angles", "angle = ∠A", "angle = 60 => ∠A = 60°", V, None),
    ("pythagorean_theorem", PY, "a^2 + b^2 = c^2 => AB = 5", V, None),
    ("pythagorean_theorem", "a = BC; b = AC = 5; c = AB = 13", "a^2 + b^2 = c^2 => BC = 12", V, None),
    ("pythagorean_theorem", PY2, "a² + b² = c² => AB = 2√2", V, None),
    ("pythagorean_theorem", PY2, "a^2 + b^2 = c^2 => AB = 2.83", V, None),
    ("pythagorean_theorem", PY2, "a^2 + b^2 = c^2 => AB = sqrt(8)", V, None),
    ("pythagorean_theorem", PY, "c = sqrt(a^2 + b^2) => AB = 5", V, None),
    ("parallel_co_interior_angles", "angle1 = ∠BEF = 70°; angle2 = ∠EFD", "angle1 + angle2 = 180 => ∠EFD = 110°", V, None),
    ("vertical_angles", "angle1 = ∠1 = 40°; angle2 = ∠2", "angle2 = angle1 => ∠2 = 40°", V, None),
    ("angles_around_point", "angle1 = ∠AOB = 100°; angle2 = ∠BOC = 120°; angle3 = ∠COA",
     "angle1 + angle2 + angle3 = 360° => ∠COA = 140°", V, None),
    ("inscribed_angle_theorem", INS, "inscribed = central / 2 => ∠ACB = 50°", V, None),
    ("inscribed_angle_theorem", "central = ∠AOB; inscribed = ∠ACB = 35°", "inscribed = central / 2 => ∠AOB = 70°", V, None),
    ("central_angle_arc", "central = ∠AOB = 80°; arc = ⌒AB", "central = arc => ⌒AB = 80°", V, None),
    ("angle_in_semicircle", "angle = ∠ACB", "angle = 90 => ∠ACB = 90°", V, None),
    ("tangent_perpendicular_radius", "angle = ∠OAP", "angle = 90 => ∠OAP = 90 degrees", V, None),
    ("tangent_segments_equal", "tangent1 = PA = 6; tangent2 = PB", "tangent2 = tangent1 => PB = 6", V, None),
    ("cyclic_quadrilateral_opposite_angles", "angle1 = ∠A = 75°; angle2 = ∠C", "angle1 + angle2 = 180° => ∠C = 105°", V, None),
    ("similar_triangles_side_ratio", SIM, "a1 / a2 = b1 / b2 => EF = 12", V, None),
    ("similar_triangles_side_ratio", SIM, "a1 * b2 = a2 * b1 => EF = 12", V, None),
    ("triangle_midline", "midline = DE; base = BC = 10", "midline = base / 2 => DE = 5", V, None),
    ("triangle_midline", "midline = DE; base = BC = 7", "midline = base / 2 => DE = 3.5", V, None),
    ("triangle_midline", "midline = DE = 4.5; base = BC", "midline = base / 2 => BC = 9", V, None),
    ("parallelogram_opposite_angles", "angle1 = ∠A = 70°; angle2 = ∠C", "angle2 = angle1 => ∠C = 70°", V, None),
    ("parallelogram_consecutive_angles", "angle1 = ∠A = 70°; angle2 = ∠B", "angle1 + angle2 = 180 => ∠B = 110°", V, None),
    ("parallelogram_opposite_sides", "side1 = AB = 7; side2 = CD", "side2 = side1 => CD = 7", V, None),
    ("rectangle_diagonals_equal", "diagonal = AC = 10; half_other = OB", "half_other = diagonal / 2 => OB = 5", V, None),
    ("rhombus_diagonals_perpendicular", "half_d1 = AO = 3; half_d2 = BO = 4; side = AB",
     "half_d1^2 + half_d2^2 = side^2 => AB = 5", V, None),
    ("polygon_interior_angle_sum", "n = 6", "total = (n - 2) * 180 => total = 720°", V, None),
    ("regular_polygon_interior_angle", REG, "angle = (n - 2) * 180 / n => ∠A = 120°", V, None),
    ("regular_polygon_interior_angle", "angle = ∠A = 120°", "angle = (n - 2) * 180 / n => n = 6", V, None),
    ("circle_circumference", CIRC, "circumference = 2 * pi * r => C = 6π", V, None),
    ("circle_circumference", CIRC, "circumference = 2 * pi * r => C = 18.85", V, None),
    ("circle_circumference", CIRC, "circumference = 2 * pi * r => C ≈ 18.8", V, None),
    ("circle_area", AREA, "area = pi * r^2 => S = 9π", V, None),
    ("circle_area", "r = OA; area = S = 16π", "area = pi * r^2 => OA = 4", V, None),
    ("arc_length", "central = ∠AOB = 90°; r = OA = 4; length = L", "length = central / 360 * 2 * pi * r => L = 2π", V, None),
    ("sector_area", "central = ∠AOB = 90°; r = OA = 4; area = S", "area = central / 360 * pi * r^2 => S = 4π", V, None),
    ("right_triangle_sine", SIN, "sin(angle) = opposite / hypotenuse => ∠A = 30°", V, None),
    ("right_triangle_sine", "angle = ∠A = 30°; opposite = BC; hypotenuse = AB = 10",
     "sin(angle) = opposite / hypotenuse => BC = 5", V, None),
    ("right_triangle_cosine", COS, "cos(angle) = adjacent / hypotenuse => BC = 4", V, None),
    ("right_triangle_tangent", TAN, "tan(angle) = opposite / adjacent => AC = 5", V, None),
    ("right_triangle_tangent", "angle = ∠A = 30°; opposite = BC; adjacent = AC = 3",
     "tan(angle) = opposite / adjacent => BC = √3", V, None),
    ("triangle_angle_sum", TRI, "angle1 + angle2 + angle3 = 180 => ∠C = 180° - 50° - 60° = 70°", V, None),
    ("triangle_angle_sum", TRI, "∠C = 180° - ∠A - ∠B = 70°", V, None),
    ("linear_pair", "angle1 = ∠A = 180° - 130°; angle2 = ∠B", "angle1 + angle2 = 180 => ∠B = 130°", V, None),
    ("triangle_angle_sum", "angle1 = ∠A = x; angle2 = ∠B = 2x; angle3 = ∠C = 90°",
     "angle1 + angle2 + angle3 = 180 => x = 30", V, None),
    ("", "", "a = 200 * 15% => a = 30", V, None),
    ("vertical_angles", "angle1 = ∠ABC = 40°; angle2 = ∠DBE", "angle2 = angle1 => ∠EBD = 40°", V, None),
    ("linear_pair", "angle1 = ∠A = 50°; angle2 = ∠B", "angle1 + angle2 = 180 => angle2 = 130", V, None),
    ("parallel_corresponding_angles", "∠EGB = angle1 = 50°; ∠GHD = angle2", "angle2 = angle1 => ∠GHD = 50°", V, None),
    ("linear_pair", LP, "angle1 + angle2 = 180° ⇒ ∠GHC = 130°", V, None),
    ("linear_pair", "angle1 = ∠GHD = 50°, angle2 = ∠GHC", "angle1 + angle2 = 180° => ∠GHC = 130°", V, None),
    ("linear_pair", "angle1 = ∠GHD = 50°; angle2 = ∠GHC", "50 + angle2 = 180 => ∠GHC = 130°", V, None),
    ("linear_pair", "angle1 = ∠1 = 50 degrees; angle2 = ∠2", "angle1 + angle2 = 180 => ∠2 = 130 degrees", V, None),
    # wrong: the stated value contradicts the relation, or the relation is not the theorem's
    ("linear_pair", LP, "angle1 + angle2 = 180° => ∠GHC = 120°", W, "130"),
    ("triangle_angle_sum", TRI, "angle1 + angle2 + angle3 = 180° => ∠C = 80°", W, "70"),
    ("pythagorean_theorem", PY, "a^2 + b^2 = c^2 => AB = 6", W, "5"),
    ("pythagorean_theorem", PY2, "a^2 + b^2 = c^2 => AB = 2.9", W, "2√2"),
    ("pythagorean_theorem", PY2, "a^2 + b^2 = c^2 => AB = 4", W, "2√2"),
    ("right_triangle_sine", SIN, "sin(angle) = opposite / hypotenuse => ∠A = 40°", W, "30"),
    ("linear_pair", LP, "angle2 = angle1 => ∠GHC = 50°", W, None),
    ("triangle_angle_sum", TRI, "∠A + ∠B = ∠C => ∠C = 110°", W, None),
    ("circle_circumference", CIRC, "circumference = 2 * pi * r => C = 3π", W, "6π"),
    ("circle_circumference", CIRC, "circumference = 2 * pi * r => C = 18.5", W, "6π"),
    ("circle_area", AREA, "area = pi * r^2 => S = 6π", W, "9π"),
    ("circle_area", "r = OA; area = S = 16π", "area = pi * r^2 => OA = 8", W, "4"),
    ("similar_triangles_side_ratio", SIM, "a1 / a2 = b1 / b2 => EF = 10", W, "12"),
    ("inscribed_angle_theorem", INS, "inscribed = central / 2 => ∠ACB = 100°", W, "50"),
    ("regular_polygon_interior_angle", REG, "angle = (n - 2) * 180 / n => ∠A = 108°", W, "120"),
    ("triangle_angle_sum", TRI, "angle1 + angle2 + angle3 = 180 => ∠C = 180° - 50° - 60° = 80°", W, "70"),
    ("triangle_angle_sum", TRI, "∠C = 180° - ∠A - ∠B = 60°", W, "70"),
    ("triangle_exterior_angle", EXT, "exterior = remote1 + remote2 => ∠ACD = 100°", W, "110"),
    ("right_triangle_tangent", TAN, "tan(angle) = opposite / adjacent => AC = 4", W, "5"),
    ("right_triangle_cosine", COS, "cos(angle) = adjacent / hypotenuse => BC = 5", W, "4"),
    ("vertical_angles", "angle1 = ∠1 = 40°; angle2 = ∠2", "angle2 = angle1 => ∠2 = 140°", W, "40"),
    # unverifiable: nothing to check, or the text cannot be read
    ("linear_pair", LP, "", U, None),
    ("linear_pair", LP, "∠GHC = 130°", U, None),
    ("linear_pair", "angle1 = ∠GHD; angle2 = ∠GHC", "angle1 + angle2 = 180 => ∠GHC = 130°", U, None),
    ("linear_pair", "angle1 = ∠A = 50°; angle2 = ∠B", "angle1 + angle2 = 180 => ∠Z = 130°", U, None),
    ("linear_pair", LP, "the angles add up => done", U, None),
    ("linear_pair", LP, "__import__('os').system('touch pwned') => x = 1", U, None),
    ("linear_pair", LP, "9**9**9**9 = x => x = 1", U, None),
    ("linear_pair", LP, "a + b = 180 => 2x = 5", U, None),
    ("linear_pair", "angle1 = ∠A = 50°; angle2 = ∠B", "angle1 + angle2 = 180 => ∠B = y", U, None),
    ("linear_pair", LP, "angle1 < angle2 => ∠GHC = 1", U, None),
    ("triangle_angle_sum", TRI, "∠C = 180° - ∠A - ∠D = 70°", U, None),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize("theorem, map_text, exec_text, status, expected", CASES,
                         ids=[f"{i}-{c[3]}-{c[2][:30]}" for i, c in enumerate(CASES)])
def test_exec_cases(theorem, map_text, exec_text, status, expected):
    result = check_step(Step(theorem, map=map_text, exec=exec_text), bank=BANK)
    assert isinstance(result, StepCheck)
    assert result.status == status, result.reason
    assert result.reason
    if expected is not None:
        assert result.expected is not None, result.reason
        got = to_sympy(result.expected.split("≈")[0])
        assert sympy.simplify(got - to_sympy(expected)) == 0, result.expected
        assert result.expected.split("≈")[0].strip() in result.reason


def test_wrong_relation_for_the_theorem_says_so():
    result = check_step(Step("linear_pair", map=LP, exec="angle2 = angle1 => ∠GHC = 50°"), bank=BANK)
    assert result.status == "wrong" and "not the theorem's relation" in result.reason


def test_without_a_bank_the_relation_itself_decides():
    assert check_step(Step("linear_pair", map=LP, exec="angle2 = angle1 => ∠GHC = 50°")).status == "verified"


def test_unknown_theorem_is_reported():
    result = check_step(Step("made_up", map=LP, exec="angle1 + angle2 = 180 => ∠GHC = 130°"), bank=BANK)
    assert result.status == "verified" and "unknown theorem id 'made_up'" in result.reason


def test_known_values_carry_in():
    step = Step("linear_pair", map="angle1 = ∠GHD; angle2 = ∠GHC", exec="angle1 + angle2 = 180 => ∠GHC = 130°")
    assert check_step(step, BANK, known={"∠DHG": 50}).status == "verified"
    assert check_step(step, BANK, known={"∠GHD": "60°"}).status == "wrong"


def test_solution_values_carry_forward_between_steps():
    text = """Theorem: parallel_corresponding_angles | Corresponding angles of parallel lines
Map: angle1 = ∠EGB = 50°; angle2 = ∠GHD
Exec: angle2 = angle1 => ∠GHD = 50°
Theorem: linear_pair | Angles forming a straight line
Map: angle1 = ∠GHD; angle2 = ∠GHC
Exec: angle1 + angle2 = 180° => ∠GHC = 130°
Theorem: vertical_angles
Map: angle1 = ∠GHC; angle2 = ∠DHF
Exec: angle2 = angle1 => ∠DHF = 130°
Answer: 130°"""
    results = check_solution(parse(text), bank=BANK)
    assert [r.status for r in results] == ["verified"] * 3
    assert results[1].facts == {"∠CHG": "130°"}


def test_a_wrong_step_does_not_poison_the_next_check():
    text = """Theorem: linear_pair
Map: angle1 = ∠1 = 50°; angle2 = ∠2
Exec: angle1 + angle2 = 180 => ∠2 = 120°
Theorem: vertical_angles
Map: angle1 = ∠2; angle2 = ∠3
Exec: angle2 = angle1 => ∠3 = 120°"""
    first, second = check_solution(parse(text), bank=BANK)
    assert first.status == "wrong" and first.expected == "130"
    assert second.status == "verified"   # judged on its own inputs: it follows from the stated ∠2


def test_check_step_is_safe_from_a_worker_thread():
    import threading

    results = []
    thread = threading.Thread(target=lambda: results.append(
        check_step(Step("pythagorean_theorem", map=PY, exec="a^2 + b^2 = c^2 => AB = 6"), BANK)))
    thread.start()
    thread.join(30)
    assert results and results[0].status == "wrong" and results[0].expected == "5"


_EXEC_SOUP = "0123456789+-*/^()=>°%√π∠ABCDab12 ;,angle"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=_EXEC_SOUP, max_size=50), st.text(alphabet=_EXEC_SOUP, max_size=40))
def test_check_step_always_returns_a_verdict(exec_text, map_text):
    result = check_step(Step("linear_pair", map=map_text, exec=exec_text), bank=BANK)
    assert result.status in ("verified", "wrong", "unverifiable")
    assert result.reason


# FormalGeo pid 5842 as the data builder writes it: ∠CAB = atan(1/3) is a number of degrees
LAW_OF_SINES = "a = AB; angle_a = ∠BCA = 90°; b = BC = 2; angle_b = ∠CAB = atan(1/3)"


def test_an_inverse_trig_value_in_the_map_is_read_in_degrees_inside_sin():
    exec_text = "a / sin(angle_a) = b / sin(angle_b) => AB = {}"
    right = check_step(Step("law_of_sines", map=LAW_OF_SINES, exec=exec_text.format("2*sqrt(10)")))
    assert right.status == "verified", right.reason
    wrong = check_step(Step("law_of_sines", map=LAW_OF_SINES, exec=exec_text.format("6")))
    assert wrong.status == "wrong" and wrong.expected.startswith("2*√(10)"), wrong.reason
    assert sympy.simplify(to_sympy(wrong.derived) - 2 * sympy.sqrt(10)) == 0


@pytest.mark.parametrize("theorem, map_text, exec_text, status, derived", [
    ("linear_pair", LP, "angle1 + angle2 = 180° => ∠GHC = 130°", V, "130°"),      # verified: the stated text
    ("linear_pair", LP, "angle1 + angle2 = 180° => ∠GHC = 120°", W, "130"),       # wrong: the correct value
    ("pythagorean_theorem", PY2, "a^2 + b^2 = c^2 => AB = 3", W, "2*sqrt(2)"),     # exact, in the grammar
    ("pythagorean_theorem", PY2, "a^2 + b^2 = c^2 => AB = 2.83", V, "2.83"),       # rounded, within its digits
    ("right_triangle_sine", SIN, "sin(angle) = opposite / hypotenuse => ∠A = 20°", W, "30"),
    ("right_triangle_sine", "angle = ∠A; opposite = BC = 1; hypotenuse = AB = 3",  # the grammar's asin is degrees
     "sin(angle) = opposite / hypotenuse => ∠A = 20°", W, "asin(1/3)"),
    ("linear_pair", LP, "angle2 = angle1 => ∠GHC = 50°", W, "50°"),              # satisfies the relation it states
    ("linear_pair", LP, "a + b = 180 => 2x = 5", U, None),
])
def test_step_check_carries_the_derived_value(theorem, map_text, exec_text, status, derived):
    result = check_step(Step(theorem, map=map_text, exec=exec_text), bank=BANK)
    assert result.status == status, result.reason
    assert result.derived == derived
    if derived is not None:
        assert result.derived_facts and list(result.derived_facts.values())[-1] == derived


def test_derived_values_cover_every_conclusion_and_read_back_as_numbers():
    result = check_step(Step("isosceles_base_angles", map="base_angle1 = ∠B = 65°; base_angle2 = ∠C = 65°",
                             exec="base_angle2 = base_angle1 => ∠C = 60°; ∠B = 65°"))
    assert result.status == "wrong"
    assert result.derived_facts == {"∠C": "65", "∠B": "65°"} and result.derived == "65°"
    for map_text, exec_text, value in [
            ("angle = ∠A; opposite = BC = 2; adjacent = AC = 3", "tan(angle) = opposite / adjacent => ∠A = 30°",
             sympy.atan(sympy.Rational(2, 3)) * 180 / sympy.pi),
            ("r = OA; area = S = 10", "area = pi * r^2 => OA = 2", sympy.sqrt(10 / sympy.pi))]:
        derived = check_step(Step("x", map=map_text, exec=exec_text)).derived
        assert abs(float(to_sympy(derived)) - float(value)) < 1e-9, derived


@pytest.mark.parametrize("residual", ["t - 7", "3*t/4 + sqrt(2)", "t^2 - 2", "2*t^2 + 3*t - 5", "sqrt(2)*(t + 1) - 4",
                                      "(t - 2)^2 - 9", "(t + 1)^3 - t^3 - 7", "1/t - 2", "t^3 - 8", "sqrt(t) - 3",
                                      "sin(t) - 1/2", "tan(t) - 1", "2^t - 8", "t*sin(t)", "5"])
def test_low_degree_roots_read_off_the_terms_agree_with_differentiating(residual):
    t = sympy.Symbol("t")
    expr = to_sympy(residual)
    d1 = expr.diff(t)
    if t not in d1.free_symbols:
        want = [] if d1 == 0 else [-expr.xreplace({t: 0}) / d1]
    else:
        d2 = d1.diff(t)
        if t in d2.free_symbols or d2 == 0:
            want = None
        else:
            a, b, c = d2 / 2, d1.xreplace({t: 0}), expr.xreplace({t: 0})
            want = [(-b + sympy.sqrt(b * b - 4 * a * c)) / (2 * a), (-b - sympy.sqrt(b * b - 4 * a * c)) / (2 * a)]
    assert checker._low_degree_roots(expr, t) == want


def test_bank_relations_are_parsed_once_per_theorem():
    checker._bank_relations.cache_clear()
    for value in ("130°", "120°", "130°"):   # the Exec is not written as in the bank: the bank relation is needed
        check_step(Step("linear_pair", map=LP, exec=f"angle2 = 180° - angle1 => ∠GHC = {value}"), bank=BANK)
    info = checker._bank_relations.cache_info()
    assert info.misses == 1 and info.hits == 2


# ------------------------------------------------------------------------------------------------ chain execution
SLIPPED_CHAIN = """Theorem: triangle_exterior_angle | Exterior angle of a triangle
Cond: ∠BKM is exterior to △BJK
Map: exterior = ∠BKM; remote1 = ∠B = 79°; remote2 = ∠J = 58°
Exec: exterior = remote1 + remote2 => ∠BKM = 140°
Theorem: linear_pair | Angles forming a straight line
Cond: ∠BKM and ∠BKJ form a line
Map: angle1 = ∠BKM = 140°; angle2 = ∠BKJ
Exec: angle1 + angle2 = 180° => ∠BKJ = 40°
Answer: 40°
"""


def test_execution_carries_the_executed_value_not_the_models_slip():
    solution = parse(SLIPPED_CHAIN)
    # The model's own writing: step 1 is wrong (79 + 58 is 137), step 2 is consistent with the slip.
    written = check_solution(solution, bank=BANK)
    assert [c.status for c in written] == [W, V]
    assert written[-1].derived.rstrip("°") == "40"
    # The tutor's run of the chain: step 2 executes with the 137° step 1 gives, so the answer is 43°.
    executed = checker.execute_solution(solution, bank=BANK)
    assert executed[0].derived.rstrip("°") == "137"
    assert executed[-1].derived.rstrip("°") == "43"
    assert executed[-1].status == W  # the stated 40° does not follow from the executed chain


def test_execution_keeps_given_values_the_map_writes():
    # Givens (never concluded by an earlier step) are read from the Map as written.
    executed = checker.execute_solution(parse(
        "Theorem: triangle_angle_sum | Angle sum\nCond: △ABC\nMap: " + TRI + "\nExec: angle1 + angle2 + angle3 = 180° => ∠C = 70°\nAnswer: 70°\n"),
        bank=BANK)
    assert [c.status for c in executed] == [V] and executed[0].derived.rstrip("°") == "70"
