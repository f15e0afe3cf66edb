"""Robustness probes and benchmark categories: variants keep the problem the same problem."""
from __future__ import annotations

from training.evaluation.categories import categories, geoqa_topic
from training.evaluation.probes import point_letters, probe_variants, rename_in_text, rename_points, shuffle_choices
from training.records import ProblemRecord


def geoqa_record(image=None) -> ProblemRecord:
    return ProblemRecord(
        id="geoqa-test-0", source="geoqa", split="test", image=image,
        question="As shown in the figure, in triangle ABC, it is known that angle A = 80.0, angle B = 60.0, "
                 "DE parallel BC, then the size of angle CED is ()",
        choices=["40°", "60°", "120°", "140°"], answer="140°", answer_index=3,
    )


def test_shuffle_remaps_the_gold_and_is_deterministic():
    record = geoqa_record()
    for seed in range(20):
        probed = shuffle_choices(record, seed)
        assert probed.choices != record.choices and sorted(probed.choices) == sorted(record.choices)
        assert probed.choices[probed.answer_index] == "140°"
        assert shuffle_choices(record, seed).choices == probed.choices
    assert record.choices == ["40°", "60°", "120°", "140°"]  # the original is untouched


def test_rename_is_consistent_across_question_choices_and_steps():
    record = ProblemRecord(
        id="s-1", source="synthetic", split="test_iid", question="In triangle PQR, ∠P = 50° and ∠Q = 60°. A line "
        "through R is drawn. Find ∠PRQ.", choices=["70°", "∠QPR", "60°", "110°"], answer="70°", answer_index=0,
        steps=[{"theorem": "triangle_angle_sum", "cond": "P, Q and R form triangle PQR",
                "map": "angle1 = ∠P = 50°; angle2 = ∠Q = 60°; angle3 = ∠PRQ", "exec": "angle1 + angle2 + angle3 = 180° => ∠PRQ = 70°"}],
    )
    probed = rename_points(record, seed=3)
    mapping = probed.meta["letter_map"]
    assert set(mapping) == {"P", "Q", "R"}
    assert all(old != new for old, new in mapping.items()) and len(set(mapping.values())) == 3
    p, q, r = mapping["P"], mapping["Q"], mapping["R"]
    assert f"triangle {p}{q}{r}" in probed.question and f"∠{p}{r}{q}" in probed.question
    assert probed.question.startswith("In triangle") and " A line " in probed.question  # the article A stays
    assert probed.choices[1] == f"∠{q}{p}{r}"
    assert probed.steps[0]["theorem"] == "triangle_angle_sum"
    assert probed.steps[0]["exec"].endswith(f"∠{p}{r}{q} = 70°")
    assert probed.answer == "70°"


def test_rename_skips_problems_whose_diagram_shows_the_letters():
    assert rename_points(geoqa_record(image="/some/diagram.png")) is None
    renamed = rename_points(geoqa_record())
    assert renamed is not None and "angle A" not in renamed.question
    assert "As shown in the figure" in renamed.question


def test_point_letters_ignore_words_and_units():
    assert point_letters(["A circle with centre O passes through B and C; AB = 3 cm."]) == ["O", "B", "C", "A"]
    assert rename_in_text("⊙O and chord AB", {"O": "P", "A": "X", "B": "Y"}) == "⊙P and chord XY"


def test_probe_variants_per_benchmark():
    names = [name for name, _ in probe_variants(geoqa_record(), "geoqa")]
    assert names == ["shuffle", "rename"]
    math_record = ProblemRecord(id="m", source="math", split="test", question="Find x if 2x = 4.", answer="2")
    assert probe_variants(math_record, "math") == []


def test_categories_per_benchmark():
    assert categories(geoqa_record(), "geoqa") == {"topic": "parallel lines"}
    assert geoqa_topic("AB is the diameter of ⊙O, point C is on the circle") == "circle"
    assert geoqa_topic("It is known that the slope using the sine of 30.0") == "right triangle / trigonometry"
    fg = ProblemRecord(id="formalgeo7k-1", source="formalgeo7k", split="test", question="q", answer="1",
                       meta={"origin": "Geometry3k", "level": 3})
    assert categories(fg, "formalgeo") == {"source": "Geometry3k", "level": "3"}
    m = ProblemRecord(id="m", source="math", split="test", question="q", answer="1",
                      meta={"subject": "Geometry", "level": 5})
    assert categories(m, "math") == {"subject": "Geometry", "level": "5"}


def curriculum_record(split: str, index: int, folder):
    from training.synthetic.generate import make_problem

    problem = make_problem(split, index, seed=0)
    (folder / f"{problem.record.id}.png").write_bytes(problem.png)
    problem.record.image = str(folder / f"{problem.record.id}.png")
    return problem.record


def test_synthetic_rename_redraws_the_same_problem_with_other_letters(tmp_path):
    from training.evaluation.synthetic_probes import renamed

    record = curriculum_record("test_iid", 3, tmp_path)
    probed = renamed(record, seed=0, image_dir=tmp_path / "probes")
    assert probed is not None and probed.id == record.id
    mapping = probed.meta["letter_map"]
    assert set(mapping) == set(record.meta["letters"]) and not set(mapping.values()) & set(mapping)
    assert probed.question == rename_in_text(record.question, mapping)
    assert probed.choices == record.choices and probed.answer_index == record.answer_index
    assert [s["theorem"] for s in probed.steps] == [s["theorem"] for s in record.steps]
    assert probed.image != record.image and probed.image.endswith("-rename.png")
    from PIL import Image

    with Image.open(probed.image) as redrawn, Image.open(record.image) as original:
        assert redrawn.size == original.size  # the same drawing (same random stream), other labels


def test_synthetic_numbers_probe_recomputes_a_checked_gold(tmp_path):
    from model.checker import check_solution
    from model.solution_format import Solution, Step
    from training.evaluation.synthetic_probes import renumbered

    for split, index in (("test_iid", 0), ("test_numbers", 1), ("test_compose", 2)):
        record = curriculum_record(split, index, tmp_path)
        probed = renumbered(record, seed=0, image_dir=tmp_path / "probes")
        assert probed is not None, (split, index)
        assert probed.meta["values"] != record.meta["values"] and probed.question != record.question
        assert probed.meta["letters"] == record.meta["letters"] and probed.meta["chain"] == record.meta["chain"]
        assert probed.choices[probed.answer_index] == probed.answer
        checks = check_solution(Solution(steps=[Step.from_record(s) for s in probed.steps], answer=probed.answer))
        assert [c.status for c in checks] == ["verified"] * len(checks)
        assert probed.steps[-1]["exec"].rpartition("=")[2].strip() == probed.answer
        assert (tmp_path / "probes" / f"{record.id}-numbers.png").is_file()
