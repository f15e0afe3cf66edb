"""Answer extraction (letters, \\boxed, Answer: lines, values matched to choices) and grading."""
import json
import os
import threading
from pathlib import Path

import pytest

from model.answers import Extracted, extract_answer, grade, last_boxed, match_choice

GEOQA_CHOICES = {"A": "40°", "B": "60°", "C": "120°", "D": "140°"}


@pytest.mark.parametrize("text, letter", [
    ("Answer: B", "B"),
    ("(B)", "B"),
    ("B", "B"),
    ("the answer is B", "B"),
    ("So the answer is (C).", "C"),
    ("Answer: 130° (B)", "B"),
    ("Answer: D. 140°", "D"),
    ("140°", "D"),
    ("Answer: 140", "D"),
    ("∠CED = 180° - 40° = 140°.\nAnswer: 140°", "D"),
    ("\\boxed{D}", "D"),
    ("\\boxed{\\text{(C)}}", "C"),
    ("I pick option c", "C"),
    ("**Answer:** A", "A"),
    ("Answer: 139.99", None),     # not 140 at the precision written
    ("Answer: 100°", None),       # no choice has this value
    ("Answer: E", None),          # not one of the choices
    ("so the answer is a right angle", None),   # "a" is an article, not choice A
    ("", None),
])
def test_choice_letters(text, letter):
    assert extract_answer(text, GEOQA_CHOICES).letter == letter


def test_choices_as_a_list_and_values_within_tolerance():
    choices = ["2√{3}", "4", "3√{3}", "6"]
    assert extract_answer("Answer: 3.46", choices).letter == "A"
    assert extract_answer("Answer: 2\\sqrt{3}", choices).letter == "A"
    assert extract_answer("Answer: 5.2", choices).letter == "C"
    assert extract_answer("Answer: 4cm", ["2cm", "4cm", "6cm", "8cm"]).letter == "B"
    assert extract_answer("Answer: \\frac{1}{2}", ["\\frac{1}{2}", "\\frac{1}{3}"]).letter == "A"
    assert extract_answer("Answer: 0.5", ["\\frac{1}{2}", "\\frac{1}{3}"]).letter == "A"


def test_a_value_matching_two_choices_gives_no_letter():
    assert match_choice("2", {"A": "2.0", "B": "2.00", "C": "3"}) is None
    assert match_choice("2", {"A": "2", "B": "2.0", "C": "3"}) == "A"   # the same text decides


@pytest.mark.parametrize("text, inner", [
    ("so $\\boxed{5}$.", "5"),
    ("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{{a}^{b}}", "{a}^{b}"),
    ("\\fbox{7}", "7"),
    ("\\boxed 5", "5"),
    ("\\boxed{unclosed", None),
    ("no box", None),
])
def test_last_boxed_handles_nesting(text, inner):
    assert last_boxed(text) == inner


@pytest.mark.parametrize("text, value", [
    ("reasoning...\nAnswer: 130°", "130°"),
    ("The answer is 12.", "12"),
    ("Final answer: $x = 3$", "$x = 3$"),
    ("so \\boxed{42}\nAnswer: 41", "42"),        # \boxed wins: it is the explicit final answer
    ("42", "42"),
])
def test_answer_values(text, value):
    assert extract_answer(text).value == value


@pytest.mark.parametrize("prediction, gold, correct", [
    ("\\boxed{\\frac{1}{2}}", "0.5", True),
    ("\\boxed{0.5}", "\\frac12", True),
    ("Answer: 2\\pi", "2\\pi", True),
    ("\\boxed{\\dfrac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}", True),
    ("\\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("\\boxed{3}", "4", False),
    ("no answer at all" * 30, "4", False),
    ("\\boxed{9^{9^{9^{9}}}}", "1", False),
    ("Answer: 10^{1000000}", "1", False),
])
def test_free_answers_with_math_verify(prediction, gold, correct):
    assert grade(prediction, gold) is correct


def test_grade_multiple_choice_by_letter():
    assert grade("Answer: D", "140°", GEOQA_CHOICES, gold_letter="D")
    assert grade("Answer: 140°", "140°", GEOQA_CHOICES)
    assert not grade("Answer: C", "140°", GEOQA_CHOICES, gold_letter="D")
    assert not grade("I don't know", "140°", GEOQA_CHOICES, gold_letter="D")
    assert grade(Extracted("140°", None), "140°", GEOQA_CHOICES, gold_letter="D")


def test_grading_works_outside_the_main_thread():
    # math-verify's default timeouts use signal.alarm and would raise here
    results = []
    thread = threading.Thread(target=lambda: results.append(
        (grade("\\boxed{\\frac{1}{2}}", "0.5"), grade("\\boxed{\\frac{1}{3}}", "0.5"))))
    thread.start()
    thread.join(60)
    assert results == [(True, False)]


def _data_dir() -> Path:
    return Path(os.environ.get("THEOREM_TUTOR_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.mark.shared_data
def test_geoqa_gold_answers_map_to_gold_letters():
    path = _data_dir() / "geoqa_test_en" / "geoqa_test.jsonl"
    if not path.exists():
        pytest.skip(f"GeoQA test data not found at {path}; set THEOREM_TUTOR_DATA")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    misses = [r["test_index"] for r in rows if extract_answer(r["answer"], r["choices"]).letter != r["answer_label"]]
    assert len(rows) == 754 and misses == []


@pytest.mark.shared_data
def test_math500_sample_agrees():
    path = _data_dir() / "math" / "math500_test.jsonl"
    if not path.exists():
        pytest.skip(f"MATH-500 data not found at {path}; set THEOREM_TUTOR_DATA")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:100]]
    agree = sum(grade(extract_answer(r["solution"]), r["answer"]) for r in rows)
    assert agree >= 99
