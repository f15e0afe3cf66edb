"""Verifier-guided selection: execute and ground each sampled chain, pick the one the tutor trusts, and say how
far it can be trusted.

One sampled text becomes a `Candidate`: its steps checked as written (the badges), executed as a chain (the
tutor's value: model.checker.execute_solution), grounded in the problem (model.grounding), and its value matched
to the choices with the grader (model.answers: the same equality evaluate.py grades with). `select` ranks the
candidates by whether every step is grounded and executes and the chain ends on the object the question asks
for, then by the share of such steps, then by how many other candidates reach the same value, and gives the chosen one with "k of N agree" and a confidence the answer box shows:

- high: every step grounded and executed with the theorem's relation, the last step concludes the object the
  question asks for, the value is one of the choices (when there are choices), the model's own arithmetic agrees,
  and (with N > 1) at least half the samples agree;
- medium: every step grounded and executed, but one of those last conditions fails;
- low: a step is not grounded, or could not be executed: the value is shown, never as checked;
- none: the chain gives no value.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from model.grounding import ProblemContext, StepGrounding, answers_question, asked_object, ground_solution

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGH"
HIGH, MEDIUM, LOW, NONE = "high", "medium", "low", "none"
_MISMATCH = "is not the theorem's relation"


@dataclass
class Candidate:
    index: int
    text: str
    solution: Any
    written: list = field(default_factory=list)       # StepCheck per step, the model's own writing checked
    executed: list = field(default_factory=list)      # StepCheck per step, the chain executed
    grounding: list[StepGrounding] = field(default_factory=list)
    value: str | None = None                          # the executed value of the last step: the tutor's value
    letter: str | None = None                         # the choice that value equals (grader), else None
    agree: int = 0                                    # candidates (this one included) with the same value
    on_question: bool = False                         # the last step concludes the object the question asks for

    @property
    def step_ok(self) -> list[bool]:
        """Per step: grounded, and executed with the theorem's own relation."""
        out = []
        for i, grounding in enumerate(self.grounding):
            run = self.executed[i] if i < len(self.executed) else None
            executes = run is not None and run.derived is not None and _MISMATCH not in (run.reason or "")
            out.append(grounding.grounded and executes)
        return out

    @property
    def grounded_verified(self) -> int:
        return sum(self.step_ok)

    @property
    def chain_ok(self) -> bool:
        return bool(self.grounding) and all(self.step_ok)

    @property
    def arithmetic_agrees(self) -> bool:
        """The model wrote every step's value as the relation gives it (no step of its own writing is wrong)."""
        return all(check.status == "verified" for check in self.written)

    def badges(self) -> list[str]:
        """The badge of each step: verified only when the arithmetic checks AND the step is grounded."""
        out = []
        for i, check in enumerate(self.written):
            grounded = self.grounding[i].grounded if i < len(self.grounding) else False
            if check.status == "verified":
                out.append("verified" if grounded else "ungrounded")
            else:
                out.append(check.status)
        return out


@dataclass
class Selection:
    chosen: Candidate
    candidates: list[Candidate]
    confidence: str

    @property
    def total(self) -> int:
        return len(self.candidates)

    @property
    def agree(self) -> int:
        return self.chosen.agree if self.chosen.value is not None else 0

    def alternatives(self) -> list[Candidate]:
        """The other candidates, best first."""
        return [c for c in _ranked(self.candidates) if c is not self.chosen]


def assess(index: int, text: str, context: ProblemContext, choices: Sequence[str] | None, bank=None) -> Candidate:
    """Check, execute and ground one sampled text. Never raises: a text the checker cannot read gets no value."""
    from model.checker import check_solution, execute_solution
    from model.solution_format import parse

    solution = parse(text or "")
    candidate = Candidate(index=index, text=text or "", solution=solution)
    if not solution.steps:
        return candidate
    try:
        candidate.written = list(check_solution(solution, bank=bank))
        candidate.executed = list(execute_solution(solution, bank=bank))
        candidate.grounding = ground_solution(solution.steps, context, candidate.executed)
        candidate.value = candidate.executed[-1].derived if candidate.executed else None
        candidate.on_question = answers_question(solution.steps, asked_object(context.text))
        candidate.letter = trusted_choice(candidate.value, choices) if candidate.value is not None else None
    except Exception:  # noqa: BLE001 - a hostile text must not take the page down; it just earns no trust
        log.exception("assessing a sampled chain failed")
        candidate.value, candidate.letter = None, None
    return candidate


def trusted_choice(value: str | None, choices: Sequence[str] | None) -> str | None:
    """The letter of the one choice equal to `value` (units and degrees ignored; math-verify equality), else None.
    Two equal choices give the first; no equal choice gives None: the box then says no choice matches."""
    from model import answers

    if value is None or not choices:
        return None
    options = answers.choice_map(choices)
    letter = answers.match_choice(value, options)
    if letter:
        return letter
    for letter, text in options.items():
        try:
            if answers.grade(value, text):
                return letter
        except Exception:  # noqa: BLE001 - a grader failure is "no match", never a crash
            continue
    return None


def same_value(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    if _squash(a) == _squash(b):
        return True
    x, y = _number(a), _number(b)
    return x is not None and y is not None and abs(x - y) <= 1e-6 * max(1.0, abs(x), abs(y))


def _squash(text: str) -> str:
    return re.sub(r"\s+|°", "", text)


def _number(text: str) -> float | None:
    from theorem_bank.safe_math import MathError, to_sympy

    try:
        value = to_sympy(text)
        return None if value.free_symbols else float(value)
    except (MathError, TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None


def _rank_key(candidate: Candidate) -> tuple:
    # higher is better: a chain whose every step is grounded and executes, then the share of such steps (a count
    # would favour long chains that wander past the question), then agreement; the earlier sample wins a tie
    steps = max(1, len(candidate.grounding))
    return (candidate.value is not None, candidate.chain_ok and candidate.on_question, candidate.chain_ok,
            candidate.grounded_verified / steps, candidate.agree, -candidate.index)


def _ranked(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=_rank_key, reverse=True)


def confidence(chosen: Candidate, total: int, has_choices: bool) -> str:
    if chosen.value is None:
        return NONE
    if not chosen.chain_ok:
        return LOW
    if not chosen.on_question:
        return MEDIUM
    if (has_choices and chosen.letter is None) or not chosen.arithmetic_agrees or (total > 1 and 2 * chosen.agree < total):
        return MEDIUM
    return HIGH


def select(texts: Sequence[str], context: ProblemContext, choices: Sequence[str] | None = None,
           bank=None) -> Selection:
    """Assess every sampled text and choose one (see the module docstring). `texts` must not be empty."""
    if not texts:
        raise ValueError("select() needs at least one sampled text")
    candidates = [assess(i, text, context, choices, bank) for i, text in enumerate(texts)]
    for candidate in candidates:
        candidate.agree = sum(1 for other in candidates if same_value(candidate.value, other.value))
    chosen = _ranked(candidates)[0]
    return Selection(chosen, candidates, confidence(chosen, len(candidates), bool(choices)))
