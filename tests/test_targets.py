"""training/targets.py: theorem, plain and answer-only targets of any record, matched on the Answer line."""
from __future__ import annotations

import pytest

from model.checker import check_solution
from model.solution_format import parse
from training.records import ProblemRecord
from training.targets import answer_line, plain_step, target_text, theorem_name, theorem_roles

STEPS = [
    {"theorem": "parallel_corresponding_angles", "cond": "AB ∥ CD; EF crosses AB at G and CD at H",
     "map": "angle1 = ∠EGB = 50°; angle2 = ∠GHD", "exec": "angle2 = angle1 => ∠GHD = 50°"},
    {"theorem": "linear_pair", "cond": "∠GHD and ∠GHC lie on line CD with common side GH",
     "map": "angle1 = ∠GHD = 50°; angle2 = ∠GHC", "exec": "angle1 + angle2 = 180° => ∠GHC = 130°"},
]


def record(**overrides) -> ProblemRecord:
    data = dict(id="r1", source="fixture", split="test", question="AB ∥ CD, ∠EGB = 50°. Find ∠GHC.",
                answer="130°", choices=["50°", "130°", "40°", "140°"], answer_index=1, steps=STEPS, image="a.png")
    data.update(overrides)
    return ProblemRecord(**data)


def test_theorem_target_is_the_design_example_and_checks():
    text = target_text(record(), "theorem")
    assert text == (
        "Theorem: parallel_corresponding_angles | Corresponding angles of parallel lines\n"
        "Cond: AB ∥ CD; EF crosses AB at G and CD at H\n"
        "Map: angle1 = ∠EGB = 50°; angle2 = ∠GHD\n"
        "Exec: angle2 = angle1 => ∠GHD = 50°\n"
        "Theorem: linear_pair | Angles forming a straight line\n"
        "Cond: ∠GHD and ∠GHC lie on line CD with common side GH\n"
        "Map: angle1 = ∠GHD = 50°; angle2 = ∠GHC\n"
        "Exec: angle1 + angle2 = 180° => ∠GHC = 130°\n"
        "Answer: 130° (B)")
    solution = parse(text)
    assert [c.status for c in check_solution(solution)] == ["verified", "verified"]


def test_plain_keeps_equations_and_values_but_no_theorems_cond_or_map():
    plain = target_text(record(), "plain")
    assert plain == ("∠GHD = ∠EGB, ∠EGB = 50°, so ∠GHD = 50°.\n"
                     "∠GHD + ∠GHC = 180°, ∠GHD = 50°, so ∠GHC = 130°.\n"
                     "Answer: 130° (B)")


def test_plain_substitutes_values_for_roles_without_objects_and_longer_roles_first():
    step = {"theorem": "polygon_interior_angle_sum", "map": "n = 6; total",
            "exec": "total = (n - 2) * 180° => total = 720°"}
    assert plain_step(step) == "total = (6 - 2) * 180°, so total = 720°."
    step = {"theorem": "right_triangle_sine", "map": "angle = ∠A = 30°; opposite = BC; hypotenuse = AB = 10",
            "exec": "sin(angle) = opposite / hypotenuse => BC = 5"}
    assert plain_step(step) == "sin(∠A) = BC / AB, ∠A = 30°, AB = 10, so BC = 5."


def test_all_three_kinds_end_with_the_same_answer_line():
    r = record()
    lines = {kind: target_text(r, kind).splitlines()[-1] for kind in ("theorem", "plain", "answer")}
    assert set(lines.values()) == {"Answer: 130° (B)"} == {answer_line(r)}
    free = record(choices=None, answer_index=None)
    assert target_text(free, "answer") == "Answer: 130°"
    assert target_text(free, "theorem").endswith("\nAnswer: 130°")


def test_records_without_steps_use_their_solution_for_plain_and_refuse_a_theorem_target():
    r = record(steps=None, solution="∠GHD = 50° by corresponding angles, so ∠GHC = 130°.")
    assert target_text(r, "plain") == "∠GHD = 50° by corresponding angles, so ∠GHC = 130°.\nAnswer: 130° (B)"
    with pytest.raises(ValueError, match="'steps' is empty"):
        target_text(r, "theorem")
    with pytest.raises(ValueError, match="neither 'steps' nor 'solution'"):
        target_text(record(steps=None), "plain")
    with pytest.raises(ValueError, match="unknown target kind"):
        target_text(r, "vanilla")


def test_theorem_names_come_from_the_bank_when_given():
    class Bank:
        def get(self, theorem_id):
            return {"name": theorem_id.upper()} if theorem_id == "linear_pair" else None

    text = target_text(record(), "theorem", bank=Bank())
    assert "Theorem: linear_pair | LINEAR_PAIR" in text
    assert "Theorem: parallel_corresponding_angles\n" in text    # unknown to this bank: no name
    assert theorem_name("linear_pair") == "Angles forming a straight line"
    assert theorem_name("not_a_theorem") == ""


def test_plain_uses_the_records_solution_when_it_is_set_even_with_steps():
    # the curriculum and the FormalGeo builder write record.solution over the problem's own objects
    r = record(solution="∠GHD = ∠EGB = 50°, so ∠GHC = 180° - 50° = 130°.")
    assert target_text(r, "plain") == "∠GHD = ∠EGB = 50°, so ∠GHC = 180° - 50° = 130°.\nAnswer: 130° (B)"
    assert target_text(record(solution="  "), "plain").startswith("∠GHD = ∠EGB, ∠EGB = 50°, so ∠GHD = 50°.\n")


def test_plain_replaces_roles_with_objects_in_an_exec_without_an_arrow():
    step = {"theorem": "vertical_angles", "map": "angle1 = ∠AOC = 35°; angle2 = ∠BOD", "exec": "angle2 = angle1"}
    assert plain_step(step) == "∠BOD = ∠AOC, ∠AOC = 35°."
    assert plain_step({"theorem": "parallel_lines", "map": "", "exec": "AB ∥ CD"}) == "AB ∥ CD."


def test_plain_never_swaps_an_object_name_for_its_value():
    # an "object = value" Map entry (FormalGeo writes these when the bank relation does not fit) keeps the name
    step = {"theorem": "similar_triangles_side_ratio", "map": "AB = 120; DE = 60",
            "exec": "AB = DE*ratio_ABC_DEF => ratio_ABC_DEF = 2"}
    assert plain_step(step) == "AB = DE*ratio_ABC_DEF, AB = 120, DE = 60, so ratio_ABC_DEF = 2."
    # lower-case objects too: only the theorem's own roles are replaced by values
    step = {"theorem": "linear_pair", "map": "x = 40; angle1 = ∠ABD; angle2 = ∠DBC = 140°",
            "exec": "angle1 + angle2 = 180° => ∠ABD = 40°"}
    assert plain_step(step) == "∠ABD + ∠DBC = 180°, x = 40, ∠DBC = 140°, so ∠ABD = 40°."
    assert theorem_roles("polygon_interior_angle_sum") == {"n", "total"}


def test_plain_reads_role_names_from_the_bank_when_given():
    class Bank:
        def get(self, theorem_id):
            return {"name": "Sum", "roles": {"k": {}, "s": {}}} if theorem_id == "made_up_sum" else None

    step = {"theorem": "made_up_sum", "map": "k = 4; s = AB", "exec": "s = k + 1 => AB = 5"}
    assert plain_step(step, Bank()) == "AB = 4 + 1, so AB = 5."
    assert plain_step(step) == "AB = k + 1, k = 4, so AB = 5."        # unknown theorem: k may be an object
    r = record(steps=[step], solution=None, answer="5", choices=None, answer_index=None)
    assert target_text(r, "plain", bank=Bank()) == "AB = 4 + 1, so AB = 5.\nAnswer: 5"
