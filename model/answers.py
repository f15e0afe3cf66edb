"""Answer extraction and grading for evaluation: the final value and choice letter of a model's text.

`extract_answer` finds the answer in free text (last \\boxed{...}, the `Answer:` line, "the answer is
...") and, for multiple choice, the letter: written explicitly ("Answer: B", "(B)", "the answer is B")
or found as the one choice whose value matches the answer. `grade` compares with the gold answer:
by letter for multiple choice, with math-verify (gold first) for free answers. math-verify's own
timeouts use signal.alarm, which only works in the main thread, so they are switched off
(parsing_timeout=None, timeout_seconds=None) and replaced by two bounds: the input is bounded before
math-verify sees it (length, exponents, \\frac nesting, factorial-like operators: decided on the text,
so the same answer always gets the same treatment), and what passes runs in a worker process
(model.sandbox) that is killed past half a second of CPU; a killed or refused comparison counts as
"math-verify cannot tell" and grading falls back to the bounded safe_math comparison. Predictions are
read by its LaTeX parser only (its plain-expression parser calls sympy's parse_expr, i.e. eval).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import sympy

from model.choices import CHOICE_LETTERS, lettered, without_letter
from theorem_bank.safe_math import MathError, to_sympy

MAX_ANSWER_CHARS = 1000
LETTERS = CHOICE_LETTERS


@dataclass(frozen=True)
class Extracted:
    value: str | None
    letter: str | None


# --- finding the answer text ---------------------------------------------------------------------------

def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}), nested braces included; None if there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    while start >= 0:
        i = text.find("{", start)
        head = text[start:i] if i >= 0 else ""
        if i >= 0 and head.rstrip() in ("\\boxed", "\\fbox"):
            depth = 0
            for j in range(i, len(text)):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1:j].strip()
            return None   # unclosed: a truncated answer
        m = re.match(r"\\boxed ([^\s$]+)", text[start:])   # "\boxed 5"
        if m:
            return m.group(1)
        start = max(text.rfind("\\boxed", 0, start), text.rfind("\\fbox", 0, start))
    return None


_ANSWER_LINE = re.compile(r"^[ \t>*#_-]*(?:final[ \t]+)?answer[ \t*_]*[:：][ \t*_]*(?P<value>.*?)[ \t*_]*$",
                          re.IGNORECASE | re.MULTILINE)
_ANSWER_IS = re.compile(r"(?:final answer|the answer|answer)\s+(?:is|should be|=)\s*[:：]?\s*(?P<value>[^\n]+)",
                        re.IGNORECASE)


def _answer_text(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    lines = list(_ANSWER_LINE.finditer(text))
    if lines:
        return lines[-1].group("value").strip()
    phrases = list(_ANSWER_IS.finditer(text))
    if phrases:
        return phrases[-1].group("value").strip().rstrip(".").strip()
    return None


# --- choices --------------------------------------------------------------------------------------------

def choice_map(choices: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """{letter: text} from a list (A, B, C... in order) or a dict such as GeoQA's {"A": "40°", ...}."""
    return lettered(choices)


def _explicit_letter(text: str, letters: str) -> str | None:
    """A choice letter written as such: "B", "(B)", "B.", "B: 140°", "option B", "130° (B)"."""
    if not letters:
        return None
    cls, lower = f"[{letters}]", f"[{letters.lower()}]"
    patterns = [
        rf"^\s*\(?\s*({cls})\s*\)?\s*(?:[.:：、)]|$)",                     # "B", "(B)", "B.", "B: 140°"
        rf"\(\s*({cls})\s*\)",                                            # "130° (B)"
        rf"(?i:\b(?:option|choice|answer))\s*(?i:is)?\s*[:：]?\s*\(?({cls})\)?(?![A-Za-z])",
        rf"(?i:\b(?:option|choice))\s*\(?({lower})\)?(?![A-Za-z])",        # "option c"
        rf"^\s*\\text\{{\s*\(?({cls})\)?\s*\}}\s*$",                       # \boxed{\text{B}}
    ]
    for pattern in patterns:
        m = re.search(pattern, text)
        if m:
            return m.group(1).upper()
    return None


_UNITS = re.compile(
    r"(平方米|平方厘米|厘米|毫米|千米|海里|小时|分钟|米|秒|度|"
    r"\b(?:cm|mm|km|m|dm|in|ft|units?|degrees?|deg|hours?|seconds?|s)\b)\s*(?:\^?\s*\{?\s*[23²³]\s*\}?\^?)?",
)


def _value_of(text: str) -> sympy.Expr | None:
    """A number for answer text such as "140°", "2√{3}cm", "\\frac{3}{2}", "4π"; None when it is not one."""
    if not text or len(text) > 200:
        return None
    cleaned = _UNITS.sub(" ", text)
    cleaned = re.sub(rf"^\s*[{LETTERS}]\s*[.:：、]\s*", "", cleaned)   # "D. 140°"
    cleaned = cleaned.replace("^°^", "°").replace("^{°}", "°").strip().rstrip(".").strip()
    if not cleaned:
        return None
    try:
        value = to_sympy(cleaned)
    except (MathError, RecursionError, ValueError, TypeError, ZeroDivisionError):
        return None
    return value if not value.free_symbols else None


def _close(a: sympy.Expr, b: sympy.Expr, rel: float = 1e-6, absolute: float = 0.0) -> bool:
    try:
        x, y = complex(sympy.N(a, 20)), complex(sympy.N(b, 20))
    except (TypeError, ValueError):
        return False
    return abs(x - y) <= max(absolute, rel * max(1.0, abs(x), abs(y)))


def _normal(text: str) -> str:
    text = re.sub(r"\s+|\$|\\[,;! ]|\\left|\\right", "", text)
    return text.replace("{", "").replace("}", "").replace("^°^", "°").replace("\\circ", "°").lower()


def match_choice(value: str, choices: Mapping[str, str]) -> str | None:
    """The letter of the one choice equal to `value` (as text, or as a number within a tolerance)."""
    if not value or not choices:
        return None
    same_text = [k for k, c in choices.items() if _normal(c) == _normal(value)]
    if len(same_text) == 1:
        return same_text[0]
    number = _value_of(value)
    if number is None:
        return None
    # decimals are compared at the precision written ("3.46" vs 2√3); exact values must agree closely
    decimals = re.findall(r"\d\.(\d+)", value)
    absolute = 0.5 * 10 ** -max(len(d) for d in decimals) * 1.0001 if decimals else 0.0
    same_value = [k for k, c in choices.items()
                  if (cv := _value_of(c)) is not None and _close(number, cv, 1e-6, absolute)]
    return same_value[0] if len(same_value) == 1 else None


# --- public API -----------------------------------------------------------------------------------------

def extract_answer(text: str, choices: Sequence[str] | Mapping[str, str] | None = None) -> Extracted:
    """The answer value and (with choices) the letter, from a model's full output or an answer string."""
    if not isinstance(text, str) or not text.strip():
        return Extracted(None, None)
    text = text[-20_000:] if len(text) > 20_000 else text   # the answer is at the end of a long text
    value = _answer_text(text)
    if value is None and len(text) <= 200:
        value = text.strip()   # a short text is taken as the answer itself ("140°", "(B)")
    options = choice_map(choices)
    letter = _letter_for(text, value, options) if options else None
    return Extracted(value[:MAX_ANSWER_CHARS] if value is not None else None, letter)


def _letter_for(text: str, value: str | None, options: dict[str, str]) -> str | None:
    letters = "".join(options)
    short_tail = text.strip().splitlines()[-1] if len(text.strip()) < 200 else ""
    # 1. a letter written as such in the answer (or the last line of a short text)
    for candidate in (value, short_tail):
        letter = _explicit_letter(candidate, letters) if candidate else None
        if letter:
            return letter
    # 2. the answer's value matches exactly one choice ("140°" -> D); a trailing "(B)" was handled above
    if value:
        letter = match_choice(without_letter(value), options)
        if letter:
            return letter
    # 3. "... the answer is B" anywhere (capital letter only: "the answer is a right angle" is no choice)
    phrases = list(re.finditer(rf"(?i:answer\s+is)\s*[:：]?\s*\(?([{letters}])\)?(?![A-Za-z0-9])", text))
    return phrases[-1].group(1) if phrases else None


MAX_VERIFY_CHARS = 300      # an answer is a number or a short expression; longer ones are not math-verify's job
MAX_FRAC_DEPTH = 4          # \frac nested deeper makes its simplification grow exponentially
MAX_SYMBOLIC_EXPONENT = 12  # (x+y+1)^{999} expands to half a million terms; numbers may have larger powers
MAX_NUMERIC_EXPONENT = 400
MATH_VERIFY_CPU_S = 0.5     # the backstop: a bounded input takes milliseconds

_RISKY = re.compile(
    r"\^\s*\{[^{}]*\^"                       # a power inside an exponent: towers
    r"|\^\s*[({]?\s*\d+\s*[)}]*\s*\^"          # 9^9^9, (10^99)^99
    r"|\*\*"                                  # Python-style powers: never LaTeX
    r"|\d{60,}"                               # a 60-digit literal
    r"|factorial|\\binom|\\choose|\\sum|\\prod|\\int|\\lim|\\Gamma|\\operatorname"   # unbounded evaluation
)
_SMALL_FACTORIAL = re.compile(r"(?<![\d.])\d{1,3}\s*!")
_EXPONENT = re.compile(r"\^\s*(?:\{\s*([-+]?[^{}]*?)\s*\}|([-+]?\d+(?:\.\d+)?|[A-Za-z]))")
_FRAC = re.compile(r"\\[dt]?frac")


def _frac_depth(text: str) -> int:
    """How deeply \\frac arguments nest (\\frac{\\frac{1}{2}}{3} is 2)."""
    stack: list[tuple[bool, int]] = []   # per open brace: is it a \frac argument, arguments still due outside
    pending = deepest = depth = 0
    i = 0
    while i < len(text):
        m = _FRAC.match(text, i)
        if m:
            pending, i = 2, m.end()
            continue
        if text[i] == "{":
            argument = pending > 0
            stack.append((argument, pending - argument))
            depth += argument
            deepest = max(deepest, depth)
            pending = 0
        elif text[i] == "}" and stack:
            argument, pending = stack.pop()
            depth -= argument
        i += 1
    return deepest


def _exponent_too_large(text: str) -> bool:
    """A power whose size is out of math-verify's reach: above 12 on anything but a number, above 400 on a
    number, or an exponent that is not a plain number at all but grows (x^{n}, 2^{x+1} are fine)."""
    for m in _EXPONENT.finditer(text):
        exponent = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
        try:
            size = abs(float(exponent))
        except ValueError:
            if re.search(r"\d{3,}", exponent):
                return True   # 2^{3x+999}
            continue
        before = text[:m.start()].rstrip()
        numeric_base = bool(re.search(r"(?<![A-Za-z_])\d+(?:\.\d+)?$", before))
        if size > (MAX_NUMERIC_EXPONENT if numeric_base else MAX_SYMBOLIC_EXPONENT):
            return True
    return False


def _risky(text: str) -> bool:
    """Text that could make sympy compute without bound inside math-verify: refused before it sees it."""
    if len(text) > MAX_VERIFY_CHARS or _RISKY.search(text) or _exponent_too_large(text):
        return True
    if _frac_depth(text) > MAX_FRAC_DEPTH or text.count("\\sqrt") > 8:
        return True
    bangs = text.count("!") - text.count("!=") - text.count("\\!")
    return bangs > len(_SMALL_FACTORIAL.findall(text))   # only factorials of small literal numbers are safe


def math_verify_in_process(gold: str, pred: str) -> bool | None:
    """math-verify's verdict (gold first) computed here, without any bound: only the sandbox worker calls it."""
    from math_verify import LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)   # it warns that we disabled its timeout
    config = [LatexExtractionConfig(boxed_match_priority=0)]
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", extraction_config=config, parsing_timeout=None)
        pred_parsed = parse(f"\\boxed{{{pred}}}", extraction_config=config, parsing_timeout=None)
        if not gold_parsed or not pred_parsed:
            return None
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:  # noqa: BLE001 - a grader must answer; math-verify errors count as "cannot tell"
        return None


@lru_cache(maxsize=4096)   # the same pair is graded up to three times per output (answer, value, tutor)
def _math_verify_equal(gold: str, pred: str) -> bool | None:
    """math-verify's verdict (gold first), or None when it cannot be used safely, overruns, or parses nothing."""
    if _risky(pred) or _risky(gold):
        return None
    from model import sandbox

    try:
        return sandbox.shared().call("model.answers", "math_verify_in_process", gold, pred, cpu_s=MATH_VERIFY_CPU_S)
    except (sandbox.Overrun, RuntimeError, OSError):
        return None


def grade(prediction: Extracted | str, gold: str, choices: Sequence[str] | Mapping[str, str] | None = None,
          gold_letter: str | None = None) -> bool:
    """True when the prediction answers the question correctly.

    Multiple choice (`choices` with `gold_letter`, or a gold that maps to one choice): letters are
    compared. Free answers: equal text, else math-verify (gold first), else equal values by safe_math."""
    pred = prediction if isinstance(prediction, Extracted) else extract_answer(str(prediction or ""), choices)
    options = choice_map(choices)
    if options:
        if not gold_letter:   # the gold may be the letter itself ("B", "(B)") or the text of one choice
            gold_letter = (_explicit_letter(gold, "".join(options)) if len(gold.strip()) <= 3 else None) \
                or match_choice(gold, options)
        if gold_letter:
            letter = pred.letter or (match_choice(pred.value, options) if pred.value else None)
            return letter is not None and letter.upper() == gold_letter.upper()
    if pred.value is None:
        return False
    if _normal(pred.value) == _normal(gold):
        return True
    verdict = _math_verify_equal(gold, pred.value)
    if verdict:
        return True
    a, b = _value_of(gold), _value_of(pred.value)
    return a is not None and b is not None and _close(a, b, 1e-6)
