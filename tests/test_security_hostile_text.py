"""Hostile Exec, Map and answer texts: each gives an error or "unverifiable" quickly and does nothing else.

The side effect the payloads try ("touch pwned") is checked in the working directory; pytest-timeout
bounds each case (a hang fails the test; speed itself is measured in bench/verify.py, not asserted).
"""
import pytest
import sympy

from model.answers import Extracted, extract_answer, grade
from model.checker import check_solution, check_step
from model.solution_format import Solution, Step, parse
from theorem_bank.safe_math import MathError, parse_relation, to_sympy

TOUCH = "__import__('os').system('touch pwned')"
HOSTILE = {
    "import": TOUCH,
    "import in eval": f"eval(\"{TOUCH}\")",
    "exec": f"exec(\"{TOUCH}\")",
    "open": "open('pwned', 'w').write('x')",
    "subclasses": "().__class__.__bases__[0].__subclasses__()",
    "attribute chain": "x.__class__.__mro__[-1].__subclasses__()[0]",
    "subscript": "globals()['__builtins__']['eval']('1')",
    "lambda": f"(lambda: {TOUCH})()",
    "lambda plain": "lambda x: x",
    "list comprehension": f"[{TOUCH} for _ in range(1)]",
    "generator": "sum(x for x in range(10**9))",
    "f-string": f"f\"{{{TOUCH}}}\"",
    "walrus": "(y := 5)",
    "power tower": "9**9**9**9",
    "caret tower": "9^9^9^9",
    "latex tower": "9^{9^{9^{9}}}",
    "big power": "10^(10^10)",
    "factorial": "factorial(10**9)",
    "postfix factorial": "(10^9)!",
    "huge literal": "1" * 5000,
    "megabyte": "1+" * 500_000 + "1",
    "megabyte name": "a" * 1_000_000,
    "deep parentheses": "(" * 100_000 + "1" + ")" * 100_000,
    "deep latex": "\\frac{" * 2000 + "1" + "}{2}" * 2000,
    "deep sqrt": "√" * 5000 + "2",
    "nul bytes": "\x00\x01\x02 => x = 1",
    "dunder name": "__builtins__",
    "keyword": "import os",
}


@pytest.fixture(autouse=True)
def in_scratch_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / "pwned").exists(), "a hostile text ran a command"


def _ids():
    return list(HOSTILE)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=_ids())
def test_safe_math_refuses_or_reads_harmlessly(text):
    for reader in (to_sympy, parse_relation):
        try:
            result = reader(text)
        except MathError:
            continue
        # a few payloads are harmless names once the grammar is applied ("__builtins__" is refused, "x" is a symbol)
        assert isinstance(result, (sympy.Basic, list))


@pytest.mark.timeout(5)
@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=_ids())
def test_checker_gives_unverifiable(text):
    steps = [
        Step("linear_pair", map="angle1 = ∠A = 50°; angle2 = ∠B", exec=f"{text} => ∠B = 130°"),
        Step("linear_pair", map="angle1 = ∠A = 50°; angle2 = ∠B", exec=f"angle1 + angle2 = 180 => ∠B = {text}"),
        Step("linear_pair", map=f"angle1 = ∠A = {text}; angle2 = ∠B", exec="angle1 + angle2 = 180 => ∠B = 130°"),
        Step("linear_pair", map="angle1 = ∠A = 50°; angle2 = ∠B", exec=text),
    ]
    for step in steps:
        result = check_step(step)
        assert result.status in ("unverifiable", "wrong"), (step, result)
    assert check_step(steps[0]).status == "unverifiable"
    assert check_step(steps[3]).status == "unverifiable"
    assert check_step(Step("linear_pair", map="angle1 = ∠A; angle2 = ∠B",
                           exec="angle1 + angle2 = 180 => ∠B = 130°"), known={"∠A": text}).status == "unverifiable"
    assert len(check_solution(Solution(steps=steps))) == len(steps)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=_ids())
def test_solution_parser_stays_total(text):
    for candidate in (text, f"Theorem: {text}\nMap: {text}\nExec: {text}\nAnswer: {text}"):
        solution = parse(candidate)
        assert isinstance(solution, Solution)


@pytest.mark.timeout(5)
@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=_ids())
def test_answers_are_graded_without_running_anything(text):
    for candidate in (text, f"Answer: {text}", f"\\boxed{{{text}}}"):
        extracted = extract_answer(candidate, {"A": "40°", "B": "60°"})
        assert isinstance(extracted, Extracted)
        assert grade(candidate, "1") in (True, False)
        assert grade(candidate, "40°", {"A": "40°", "B": "60°"}, gold_letter="A") in (True, False)
    assert grade(f"\\boxed{{{text}}}", text[:500]) in (True, False)   # hostile gold as well
