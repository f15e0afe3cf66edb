"""The v1 solution format (DESIGN.md): structured theorem steps <-> text, render and parse in one place.

    Theorem: <bank id> | <name>
    Cond: ...
    Map: role = object = value; role = object
    Exec: <relation over roles> => <object> = <value>
    Answer: ...

`render` writes exactly that; `parse` reads it back and is total: any input (empty, garbage, a
half-streamed answer, Markdown-decorated lines, full-width colons, text before or after the steps)
gives a Solution with the steps it found, the answer, and a list of problems; it never raises.
For every text that `render` can produce, `render(parse(text)) == text`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

FIELDS = ("cond", "map", "exec")
_KEYWORDS = {  # spelling (lower case) -> field
    "theorem": "theorem", "cond": "cond", "condition": "cond", "conditions": "cond",
    "map": "map", "mapping": "map", "exec": "exec", "execute": "exec", "execution": "exec",
    "answer": "answer", "final answer": "answer",
}
_LABELS = {"theorem": "Theorem", "cond": "Cond", "map": "Map", "exec": "Exec", "answer": "Answer"}

# A keyword line, allowing what models decorate it with: list bullets or numbers, headings, quotes,
# "Step 2:", bold/italic markers around the keyword, and an ASCII or full-width colon.
_LINE_RE = re.compile(
    r"^[ \t]*(?:>[ \t]*)?(?:#{1,6}[ \t]+)?(?:[-*+•][ \t]+|\d{1,3}[.)][ \t]+)?"
    r"(?:(?:\*\*|__|\*|_)?step[ \t]*\d{1,3}(?:\*\*|__|\*|_)?[ \t]*[:：.)-]?[ \t]*)?"
    r"(?P<open>\*\*|__|\*|_)?[ \t]*"
    r"(?P<key>final[ \t]+answer|theorem|conditions|condition|cond|mapping|map|execution|execute|exec|answer)"
    r"[ \t]*(?P<close1>\*\*|__|\*|_)?[ \t]*[:：][ \t]*(?P<close2>\*\*|__|\*|_)?[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
MAX_PROBLEMS = 50   # a 1 MB answer of junk lines should not give a 1 MB problem list


@dataclass
class Step:
    theorem: str
    name: str = ""
    cond: str = ""
    map: str = ""
    exec: str = ""

    @classmethod
    def from_record(cls, d: dict[str, Any], name: str = "") -> "Step":
        """A step from a problem record's {theorem, cond, map, exec} dict (missing fields are empty)."""
        return cls(theorem=str(d.get("theorem") or ""), name=name or str(d.get("name") or ""),
                   cond=str(d.get("cond") or ""), map=str(d.get("map") or ""), exec=str(d.get("exec") or ""))

    def to_record(self) -> dict[str, str]:
        return {"theorem": self.theorem, "cond": self.cond, "map": self.map, "exec": self.exec}


@dataclass
class Solution:
    steps: list[Step] = field(default_factory=list)
    answer: str | None = None
    problems: list[str] = field(default_factory=list)
    preamble: str = ""
    trailer: str = ""


def _one_line(text: str) -> str:
    # A field is one line of the format; a newline inside it would start a new (wrong) line.
    return " ".join(str(text).replace("\r", " ").split("\n")).strip()


def render(solution: Solution) -> str:
    """The v1 text of a solution. Empty Cond/Map/Exec fields are left out; `answer=None` writes no Answer line."""
    lines: list[str] = []
    if solution.preamble:
        lines.append(solution.preamble)
    for step in solution.steps:
        head = f"Theorem: {_one_line(step.theorem)}"
        if _one_line(step.name):
            head += f" | {_one_line(step.name)}"
        lines.append(head)
        for name in FIELDS:
            value = _one_line(getattr(step, name))
            if value:
                lines.append(f"{_LABELS[name]}: {value}")
    if solution.answer is not None:
        answer = _one_line(solution.answer)
        lines.append(f"Answer: {answer}" if answer else "Answer:")
    if solution.trailer:
        lines.append(solution.trailer)
    return "\n".join(lines)


def _match_line(line: str) -> tuple[str, str] | None:
    """(field, value) for a keyword line, else None."""
    if len(line) > 100_000 or ":" not in line and "：" not in line:
        return None
    m = _LINE_RE.match(line.rstrip("\r"))
    if not m:
        return None
    key = _KEYWORDS[re.sub(r"[ \t]+", " ", m.group("key").lower())]
    marker = m.group("open")
    value = m.group("value")
    if not marker:
        # without an opening "**" a leading "*" or "_" belongs to the value, not to the decoration
        value = (m.group("close2") or "") + value
    value = value.strip()
    if marker and value.endswith(marker):    # "**Answer: 130°**"
        value = value[: -len(marker)].rstrip()
    return key, value


def _split_theorem(value: str) -> tuple[str, str]:
    theorem, _, name = value.partition("|")
    return theorem.strip().strip("`*"), name.strip()


def parse(text: Any, bank: Any = None) -> Solution:
    """Read a solution from any text; never raises. With a `bank` (anything with .get(id)), unknown
    theorem ids are listed in `problems`; the steps keep them either way."""
    try:
        return _parse(text, bank)
    except Exception as err:  # noqa: BLE001 - totality is the contract; a bug here must not crash the app
        return Solution(problems=[f"internal parser error ({type(err).__name__}: {err}); text kept as preamble"],
                        preamble=text if isinstance(text, str) else "")


def _parse(text: Any, bank: Any) -> Solution:
    problems: list[str] = []

    def problem(message: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(message)
        elif len(problems) == MAX_PROBLEMS:
            problems.append("more problems not listed")

    if text is None:
        return Solution(problems=["no text"])
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    if not text.strip():
        return Solution(problems=["empty text"], preamble=text)

    lines = text.split("\n")
    matched = [_match_line(line) for line in lines]
    keyword_rows = [i for i, m in enumerate(matched) if m is not None]
    if not keyword_rows:
        return Solution(problems=["no Theorem, Exec or Answer lines found"], preamble=text)
    first, last = keyword_rows[0], keyword_rows[-1]

    steps: list[Step] = []
    answer: str | None = None
    current: Step | None = None
    for row in range(first, last + 1):
        where = f"line {row + 1}"
        m = matched[row]
        if m is None:
            if lines[row].strip():
                problem(f"{where}: text outside any field was ignored: {lines[row].strip()[:60]!r}")
            continue
        key, value = m
        if key == "theorem":
            theorem, name = _split_theorem(value)
            if not theorem:
                problem(f"{where}: Theorem line without a theorem id")
            elif not _ID_RE.match(theorem):
                problem(f"{where}: theorem {theorem[:60]!r} is not a bank id (expected snake_case)")
            if answer is not None:
                problem(f"{where}: a step follows the Answer line")
            current = Step(theorem=theorem, name=name)
            steps.append(current)
        elif key == "answer":
            if answer is not None:
                problem(f"{where}: a second Answer line; the last one is used")
            answer = value
            current = None
        else:
            if current is None:
                problem(f"{where}: {_LABELS[key]} line outside a step (no Theorem line before it)")
                current = Step(theorem="")
                steps.append(current)
            if getattr(current, key):
                problem(f"{where}: a second {_LABELS[key]} line in step {len(steps)}; kept the first")
            else:
                setattr(current, key, value)

    for number, step in enumerate(steps, 1):
        label = f"step {number} ({step.theorem or 'no theorem'})"
        if not step.map:
            problem(f"{label}: no Map line")
        if not step.exec:
            problem(f"{label}: no Exec line")
        if bank is not None and step.theorem and _bank_get(bank, step.theorem) is None:
            problem(f"{label}: unknown theorem id {step.theorem!r}")
    if answer is None:
        problem("no Answer line (the text may be truncated)")

    return Solution(steps=steps, answer=answer, problems=problems,
                    preamble="\n".join(lines[:first]), trailer="\n".join(lines[last + 1:]))


def _bank_get(bank: Any, theorem_id: str) -> Any:
    try:
        return bank.get(theorem_id)
    except Exception:  # noqa: BLE001 - a failing bank lookup is reported as "unknown", not raised
        return None
