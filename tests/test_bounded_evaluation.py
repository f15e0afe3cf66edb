"""Issue 16, points 1, 2, 3, 6 and 7: no untrusted text or upload can stall the tutor or the evaluator.

Each test names the input that stalled today's code. A hang fails through pytest-timeout; how fast the
bounded paths are is measured in bench/hostile.py, never asserted here.
"""
import itertools
import time
import zlib

import pytest

from model.answers import grade
from model.checker import check_solution, check_step
from model.solution_format import Step, parse
from theorem_bank.safe_math import MathError, to_sympy

MAP = "angle1 = ∠A = 50°; angle2 = ∠B"
BENIGN = ("Theorem: linear_pair | Angles forming a straight line\nCond: c\n"
          f"Map: {MAP}\nExec: angle1 + angle2 = 180° => ∠B = 130°\nAnswer: 130°\n")


def slow_step(offset):
    """A step as slow as the grammar allows (12 functions): its wrong value makes the checker solve numerically."""
    sines = " + ".join(f"sin({k + offset}∠B)" for k in range(1, 13))
    return f"Theorem: t | t\nCond: c\nMap: a = ∠B\nExec: {sines} = 0.3 => ∠B = 7\n"


def record(answer="130°", choices=None):
    from training.records import ProblemRecord

    return ProblemRecord(id="p1", source="test", split="test", question="Find ∠B.", answer=answer, choices=choices,
                         answer_index=1 if choices else None)


# --- 1. a typed choice froze the whole app ---------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_a_root_power_tower_is_refused_on_any_base_before_sympy_computes_it():
    for text in ("((√3^999)^999)^999", "(√2^999)^999", "((2^(1/2))^999)^999", "(3^499*√3)^999"):
        with pytest.raises(MathError, match="too large"):
            to_sympy(text)
    assert to_sympy("√3^4") == 9   # small powers of roots still fold


@pytest.mark.timeout(60)
def test_a_typed_choice_with_a_root_power_tower_still_renders_the_answer():
    from app.handlers import render_output

    rendered = render_output(BENIGN, None, ["((√3^999)^999)^999", "130", "50", "40"], final=True)
    assert 'class="tt-choice">B<' in rendered.answer


# --- 2. the stated value was substituted outside the guards ----------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("exec_text, why", [
    ("((∠B)^1000)^1000 = 5 => ∠B = 10^30", "degree above"),
    ("factorial(∠B) = 1 => ∠B = 10000000", "factorial(10000000)"),
    ("∠B^999 = 5 => ∠B = 10^39", "too large"),
    ("∠B! = 1 => ∠B = 100000", "factorial(100000)"),
])
def test_the_stated_value_goes_in_under_the_size_guards(exec_text, why):
    result = check_step(Step("t", map="a = ∠B", exec=exec_text))
    assert result.status == "unverifiable" and why in result.reason, result.reason


@pytest.mark.timeout(60)
def test_the_evaluator_scores_such_an_output():
    from training.evaluation.scoring import score_output

    output = "Theorem: t | t\nCond: c\nMap: a = ∠B\nExec: factorial(∠B) = 1 => ∠B = 10000000\nAnswer: 10000000\n"
    line = score_output(record(), output, mode="open")
    assert line["step_counts"]["unverifiable"] == 1 and line["correct"] is False


# --- 3. the answer grader hung in math-verify --------------------------------------------------------------------

def _nested_frac(depth):
    text = "x"
    for _ in range(depth):
        text = "\\frac{x}{1+" + text + "}"
    return text


HOSTILE_ANSWERS = ("(x+y+1)^{999}", _nested_frac(20), "2^{3x+999}", "9^{9^{9}}")


@pytest.mark.timeout(60)
def test_answers_that_stall_math_verify_are_graded():
    for answer in HOSTILE_ANSWERS:   # gold x+y+1: today math-verify expands (x+y+1)^999 against it for minutes
        assert grade(f"\\boxed{{{answer}}}", "x+y+1") is False


@pytest.mark.timeout(60)
def test_answers_that_stall_math_verify_never_reach_it(monkeypatch):
    from model import sandbox
    from model.answers import _risky

    def refuse(*args, **kwargs):
        raise AssertionError(f"math-verify was given {args}")

    monkeypatch.setattr(sandbox.Sandbox, "call", refuse)
    for answer in HOSTILE_ANSWERS:
        assert _risky(answer)
        assert grade(f"\\boxed{{{answer}}}", "x") is False
    assert not _risky("\\frac{\\sqrt{3}}{2}") and not _risky("x^{2}+2^{10}")


@pytest.mark.timeout(60)
def test_math_verify_still_grades_ordinary_answers_in_its_worker():
    assert grade("\\boxed{\\frac{2}{6}}", "\\frac{1}{3}") is True
    assert grade("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt 3}{2}") is True
    assert grade("\\boxed{x^2+2x+1}", "(x+1)^2") is True


@pytest.mark.timeout(120)
def test_the_sandbox_kills_work_past_its_cpu_limit_and_starts_a_fresh_worker():
    from model import sandbox

    box = sandbox.Sandbox(workers=1, preload=[], warm_up=None)
    try:
        with pytest.raises(sandbox.Overrun, match="CPU"):
            box.call("math", "factorial", 10 ** 7, cpu_s=0.3, wall_s=60)
        assert box.call("math", "sqrt", 4.0) == 2.0
        with pytest.raises(RuntimeError, match="ValueError"):
            box.call("math", "sqrt", -1.0)
        with pytest.raises(RuntimeError, match="MemoryError"):   # 600 MB is above what a worker may add
            box.call("builtins", "bytearray", 600 * 2 ** 20)
        assert box.call("math", "sqrt", 9.0) == 3.0
    finally:
        box.close()


@pytest.mark.timeout(60)
def test_the_evaluator_scores_a_hostile_answer():
    from training.evaluation.scoring import score_output

    line = score_output(record(answer="x+y+1"), "The answer is \\boxed{(x+y+1)^{999}}.", mode="open")
    assert line["correct"] is False and line["value_correct"] is False


# --- 6. an 8000x8000 upload was decoded at full size ---------------------------------------------------------------

def _png_header_only(width, height):
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_an_8000_by_8000_png_is_refused_from_its_header_without_decoding(monkeypatch):
    from PIL import ImageFile

    from model.images import ImageError, open_image

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match=r"8000x8000 pixels \(64 Mpx\), above the 16 Mpx limit"):
        open_image(_png_header_only(8000, 8000))


# --- 7. a per-step clock: 12 slow steps took 64.8 s, and verdicts flipped with the load ---------------------------

@pytest.mark.timeout(120)
def test_a_solution_of_slow_steps_stops_at_its_budget():
    from model.solver import SOLUTION_UNITS, STEP_UNITS, WorkBudget

    solution = parse("".join(slow_step(k) for k in range(12)) + "Answer: 7\n")
    budget = WorkBudget()
    checks = check_solution(solution, budget=budget)
    assert len(checks) == 12
    assert checks[0].status == "wrong"   # the first steps are checked in full
    assert "checking budget" in checks[-1].reason and checks[-1].status == "unverifiable"
    assert budget.spent <= SOLUTION_UNITS + STEP_UNITS   # the step that crosses the line stops at its next payment


@pytest.mark.timeout(120)
def test_verdicts_do_not_depend_on_how_loaded_the_machine_is(monkeypatch):
    solution = parse("".join(slow_step(k) for k in range(3)) + BENIGN)
    idle = [(c.status, c.reason) for c in check_solution(solution)]
    # a machine so loaded that every reading of the clock is ten seconds after the previous one
    clock = itertools.count(0.0, 10.0)
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    loaded = [(c.status, c.reason) for c in check_solution(solution)]
    assert loaded == idle
    assert [status for status, _ in idle] == ["wrong", "wrong", "wrong", "verified"]
