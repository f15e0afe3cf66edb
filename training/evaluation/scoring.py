"""Grading of one model output against one problem record: the answer, the steps, the theorems cited.

`score_output(record, output, ...)` is a pure function of its arguments (plus the bank it is given),
so the same output always gets the same line in predictions.jsonl; the runner only adds timing.

One output cannot stall a run: its work is bounded per problem before anything runs. Checking the steps as
written and executing the chain each get one solution's deterministic work budget (model.solver.WorkBudget,
the same the app uses, so both give the same verdicts and tutor answer); each answer comparison is safe_math's
bounded grammar or math-verify on an input bounded by its text, in a worker killed past half a second of CPU,
and a pair is compared once however many fields grade it (model.answers).
"""
from __future__ import annotations

import re
from typing import Any

from model import answers
from model.answers import extract_answer, grade
from model.choices import CHOICE_LETTERS, record_letter, without_letter
from model.checker import check_solution, execute_solution
from model.solution_format import parse
from model.solver import WorkBudget


def formalgeo_alias_map(bank) -> dict[str, str]:
    """FormalGeo theorem name -> bank id, from the bank's `aliases.formalgeo` lists."""
    mapping: dict[str, str] = {}
    if bank is None:
        return mapping
    for theorem in bank.all():
        for alias in (theorem.get("aliases") or {}).get("formalgeo") or []:
            mapping.setdefault(str(alias), theorem["id"])
    return mapping


def gold_formalgeo_theorems(record) -> list[str]:
    """Theorem names of a FormalGeo7k solution: "triangle_property_angle_sum(1,ABC)" -> "triangle_property_angle_sum"."""
    seqs = (record.meta or {}).get("theorem_seqs") or (record.meta or {}).get("formalgeo_theorems") or []
    names = []
    for entry in seqs:
        name = re.split(r"[(\s]", str(entry), maxsplit=1)[0]
        if name and name not in names:
            names.append(name)
    return names


def choice_conflict(extracted, choices) -> bool:
    """A letter was given but the stated value is another choice's, or none of them ("10° (C)" where C is
    99°). Letter grading, the published convention, credits such an answer; this flag shows how often."""
    if not choices or extracted.letter is None or not extracted.value:
        return False
    value = without_letter(extracted.value)
    if not value or re.fullmatch(rf"\(?\s*[{CHOICE_LETTERS}]\s*\)?\.?", value):
        return False  # only the letter was written: nothing to disagree with
    try:
        value_letter = answers.match_choice(value, answers.choice_map(choices))
    except Exception:  # noqa: BLE001 - a hostile value must not break scoring
        return False
    return value_letter != extracted.letter.upper()


def is_parse_failure(output: str, extracted, solution) -> bool:
    """No answer stated: no choice letter, and no Answer line, \\boxed{} or "the answer is".

    extract_answer falls back to the whole text of a short output as its value; that fallback is a
    guess, not a stated answer, so it does not count here.
    """
    if extracted.letter is not None:
        return False
    find_stated = getattr(answers, "_answer_text", None)
    stated = find_stated(output) if find_stated else solution.answer
    return stated is None


def _grade_safely(value, record, choices, letter) -> bool:
    if value is None:
        return False
    try:
        return bool(grade(value, record.answer, choices=choices, gold_letter=letter))
    except Exception:  # a grader crash on hostile text counts as wrong, never aborts the run
        return False


def tutor_answer(solution, bank=None) -> str | None:
    """The tutor's answer: the value the checker obtains by executing the model's chain of Exec relations
    (model.checker.execute_solution: each step runs with its Map bindings and the values earlier steps
    executed), read from the LAST step, because that is the step whose result the solution claims as its
    answer. A solution whose last step cannot be executed has no tutor answer (graded wrong), even if an
    earlier step happened to produce the right number.
    """
    if not solution.steps:
        return None
    executed = execute_solution(solution, bank=bank, budget=WorkBudget())
    return executed[-1].derived if executed else None


def score_output(record, output: str, *, mode: str, bank=None, alias_map: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything predictions.jsonl keeps about one output, except identity and timing."""
    choices = record.choices if mode == "choice" else None
    letter = record_letter(record) if mode == "choice" else None
    solution = parse(output or "")
    extracted = extract_answer(output or "", choices=choices)
    if choices is None and extracted.value:
        # the tutor's format appends "(B)" when choices are shown; without choices a stray letter is not
        # part of the value (a model trained on multiple choice may still write one)
        extracted = type(extracted)(without_letter(extracted.value) or extracted.value, extracted.letter)
    correct = _grade_safely(extracted, record, choices, letter)
    # The value the Answer line states, graded against the gold value whatever letter follows it: a small model
    # can be right about 108° and still pick the letter of another choice.
    stated_value_correct = _value_graded(extracted.value, record.answer)
    conflict = choice_conflict(extracted, choices)

    try:
        checks = check_solution(solution, bank=bank, budget=WorkBudget()) if solution.steps else []
    except Exception as err:  # the checker must not take the run down; record why
        checks = []
        check_error = f"{type(err).__name__}: {err}"
    else:
        check_error = None
    counts = {"verified": 0, "wrong": 0, "unverifiable": 0}
    for check in checks:
        counts[check.status] = counts.get(check.status, 0) + 1

    cited = [step.theorem for step in solution.steps if step.theorem]
    existing = [tid for tid in cited if bank is not None and bank.get(tid) is not None]
    try:
        tutor = tutor_answer(solution, bank=bank)
    except Exception:  # noqa: BLE001 - as for the checks: never take the run down
        tutor = None
    # The tutor's answer is a value, never a letter: grade it against the gold value (and the gold
    # choice text when choices exist, which grade() maps back to the letter).
    tutor_correct = _grade_safely(tutor, record, choices, letter) if tutor is not None else False

    line: dict[str, Any] = {
        "gold": record.answer,
        "gold_letter": letter,
        "extracted": {"value": extracted.value, "letter": extracted.letter},
        "correct": correct,
        "value_correct": stated_value_correct,
        "parse_failure": is_parse_failure(output or "", extracted, solution),
        "choice_conflict": conflict,
        "format_ok": bool(solution.steps) and solution.answer is not None and not solution.problems,
        "format_problems": list(solution.problems)[:5],
        "steps": [step.to_record() for step in solution.steps],
        "step_checks": [{"status": c.status, "reason": c.reason, "expected": None if c.expected is None else str(c.expected)}
                        for c in checks],
        "step_counts": counts,
        "cited": cited,
        "cited_existing": len(existing),
        "tutor_answer": tutor,
        "tutor_correct": tutor_correct,
    }
    if check_error:
        line["check_error"] = check_error
    gold_theorems = gold_formalgeo_theorems(record)
    if gold_theorems:
        alias_map = alias_map or {}
        mapped = sorted({alias_map[name] for name in gold_theorems if name in alias_map})
        line["gold_theorems"] = {"formalgeo": gold_theorems, "bank": mapped,
                                 "recalled": sorted(set(mapped) & set(cited))}
    return line


def _value_graded(value: str | None, gold) -> bool:
    value = without_letter(value)
    if not value or gold is None:
        return False
    try:
        return bool(grade(value, gold))
    except Exception:  # noqa: BLE001 - as in scoring: a grader crash is a wrong answer
        return False


def value_correct(line: dict) -> bool:
    """`value_correct` of a predictions line, recomputed from its stored answer for lines written before the
    field existed."""
    if "value_correct" in line:
        return bool(line["value_correct"])
    return _value_graded((line.get("extracted") or {}).get("value"), line.get("gold"))
