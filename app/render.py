"""HTML for the tutor's cards: retrieved theorems, ⟨Cond, Map, Exec⟩ steps with checker badges, the answer.

Everything here is a pure function from plain data to a string that goes into a `gr.Markdown` (which renders
LaTeX through KaTeX and sanitizes HTML a second time). Model output and student text are hostile, so every
piece of text is HTML-escaped here; LaTeX survives escaping because KaTeX reads the page's text, not its markup.
Cards never contain a blank line: Markdown would end the HTML block there and start reading the text as Markdown.
"""
from __future__ import annotations

import html
import re
from typing import Any, Iterable, Sequence

from model.choices import index_of

# The delimiters the answer panes render as mathematics (Gradio's `latex_delimiters`).
LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
]

BADGES = {
    "verified": ("✓ verified", "tt-ok"),
    "ungrounded": ("arithmetic right, not grounded", "tt-ungrounded"),
    "wrong": ("✗ wrong", "tt-bad"),
    "unverifiable": ("? not checked", "tt-unk"),
    "pending": ("… checking", "tt-pending"),
    "writing": ("✎ writing", "tt-pending"),
}

CSS = """
.tt-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 14px; margin: 8px 0;
  background: var(--background-fill-primary);}
.tt-card h4 {margin: 0 0 6px 0; font-size: 1.02em;}
.tt-card .tt-row {margin: 3px 0; white-space: pre-wrap; overflow-wrap: anywhere;}
.tt-card .tt-key {display: inline-block; min-width: 3.6em; font-weight: 600; color: #4b5563;}
.tt-theorem {border-left: 4px solid #6b8fd6;}
.tt-step {border-left: 4px solid #999;}
.tt-step.tt-ok {border-left-color: #2e9d4f;}
.tt-step.tt-bad {border-left-color: #d2453d;}
.tt-badge {display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 0.82em; font-weight: 600;
  margin-left: 8px; vertical-align: middle;}
.tt-badge.tt-ok {background: #dff3e4; color: #1d6b35;}
.tt-badge.tt-bad {background: #fbe1df; color: #9b231c;}
.tt-badge.tt-unk {background: #ececec; color: #4a4a4a;}
.tt-badge.tt-ungrounded {background: #fdf0d5; color: #6b4300;}
.tt-step.tt-ungrounded {border-left-color: #c98a00;}
.tt-badge.tt-pending {background: #eef2fb; color: #3c5aa6;}
.tt-why {color: #4b5563; font-size: 0.9em;}
.tt-id {color: #4b5563; font-size: 0.8em; font-weight: 400;}
.tt-hint-label {color: #243f7a; font-weight: 600;}
.tt-executed {margin-top: 0.3em; font-size: 0.95em;}
.tt-answer {border: 2px solid #6b7280; border-radius: 10px; padding: 10px 14px; margin: 8px 0; font-size: 1.1em;
  background: #ffffff; color: #1f2937;}
.tt-answer.tt-conf-high {border-color: #2e9d4f; background: #f1faf3;}
.tt-answer.tt-conf-medium {border-color: #c98a00; background: #fffaf0;}
.tt-answer.tt-conf-low, .tt-answer.tt-conf-none {border-color: #6b7280; border-style: dashed; background: #f7f7f8;}
.tt-verdict {font-size: 0.9em; margin-top: 4px;}
.tt-model-answer, .tt-agree {font-size: 0.88em; color: #374151; margin-top: 4px;}
.tt-alts {margin-top: 8px; font-size: 0.92em;}
.tt-alts summary {cursor: pointer; color: #1d4ed8;}
.tt-alt {border-top: 1px solid #d1d5db; padding: 6px 0;}
.tt-note {border-radius: 8px; padding: 8px 12px; margin: 8px 0; background: #fff6dd; color: #5b4500;}
.tt-error {border-radius: 8px; padding: 8px 12px; margin: 8px 0; background: #fbe1df; color: #7a1b15;}
.tt-info {border-radius: 8px; padding: 8px 12px; margin: 8px 0; background: #eef2fb; color: #243f7a;}
.tt-plain {white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--font-mono); font-size: 0.9em;
  border: 1px dashed var(--border-color-primary); border-radius: 8px; padding: 8px 12px;}
.tt-roles {border-collapse: collapse; margin: 4px 0;}
.tt-roles td, .tt-roles th {border: 1px solid var(--border-color-primary); padding: 2px 8px; text-align: left;}
.tt-card, .tt-answer, .tt-plain, .tt-note {font-family: var(--font), "DejaVu Sans", "Noto Sans Math",
  "WenQuanYi Zen Hei", "Noto Sans CJK SC", sans-serif;}
.tt-progress::before {content: ""; display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.5em;
  border: 2px solid #243f7a; border-right-color: transparent; border-radius: 50%; vertical-align: -0.1em;
  animation: tt-spin 0.8s linear infinite;}
@keyframes tt-spin {to {transform: rotate(360deg);}}
"""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text(value: Any) -> str:
    """Escape any text for the page; control characters go, newlines become <br> so a card never holds a
    blank line."""
    escaped = html.escape(_CONTROL.sub("", "" if value is None else str(value)), quote=True)
    return re.sub(r"\r?\n", "<br>", escaped)


def anchor_id(theorem_id: str) -> str:
    """A safe HTML id for a theorem card (theorem ids come from model output too)."""
    return "thm-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(theorem_id))[:80]


def notice(message: str, kind: str = "info", *, progress: bool = False) -> str:
    """A coloured message box: kind is "info", "note" (a warning) or "error"; `progress` adds a spinner."""
    extra = " tt-progress" if progress else ""
    return f'<div class="tt-{kind}{extra}">{text(message)}</div>'


def _row(key: str, value: str, raw: bool = False) -> str:
    label = f'<span class="tt-key">{text(key)}</span> ' if key else ""
    return f'<div class="tt-row">{label}{value if raw else text(value)}</div>'


def _list(items: Iterable[Any]) -> str:
    return "; ".join(text(item) for item in items if str(item).strip())


# ----------------------------------------------------------------------------------------------- theorem cards
def student_reason(reason: str) -> str:
    """Retrieval's reason in words a student reads: no dataset names, no scores."""
    reason = str(reason or "")
    if "FormalGeo" in reason or "worded like this" in reason:
        return "often used for problems worded like this"
    if reason.startswith("semantic similarity"):
        return "close in meaning to your question"
    return reason


def theorem_card(theorem: dict, reason: str = "", *, anchor: bool = True, tag: str = "") -> str:
    """One retrieved theorem: its name first (the bank id as a small detail), statement, conditions, relation."""
    tid = str(theorem.get("id", ""))
    attrs = f' id="{anchor_id(tid)}"' if anchor else ""
    name = theorem.get("name") or tid
    parts = [f'<div class="tt-card tt-theorem"{attrs}>',
             f'<h4>{text(name)}{f" <small>{text(tag)}</small>" if tag else ""}</h4>']
    if theorem.get("statement"):
        parts.append(_row("", theorem["statement"]))
    if theorem.get("conditions"):
        parts.append(_row("If", _list(theorem["conditions"]), raw=True))
    if theorem.get("relations"):
        parts.append(_row("Then", _list(theorem["relations"]), raw=True))
    if reason:
        parts.append(f'<div class="tt-row tt-why">Why it is here: {text(student_reason(reason))}</div>')
    parts.append(f'<div class="tt-row tt-id">bank id: {text(tid)}</div>')
    parts.append("</div>")
    return "".join(parts)


def theorem_cards(hits: Sequence[Any], extra: Sequence[dict] = ()) -> str:
    """The "Theorems" pane: retrieved hits (objects with .theorem and .reason) and theorems used but not retrieved."""
    if not hits and not extra:
        return notice("No theorem in the bank matched this question; the model answers on its own.", "note")
    cards = [theorem_card(hit.theorem, getattr(hit, "reason", "")) for hit in hits]
    cards += [theorem_card(theorem, tag="(used by the solution, not retrieved)") for theorem in extra]
    return "\n".join(cards)


def theorem_detail(theorem: dict) -> str:
    """The bank tab's detail view: conditions, roles, relations, aliases and a worked example."""
    if not theorem:
        return notice("Pick a theorem from the results to see its details.")
    parts = [f'<div class="tt-card tt-theorem"><h4>{text(theorem.get("name"))} '
             f'<span class="tt-id">({text(theorem.get("id"))})</span></h4>',
             _row("Topic", f'{theorem.get("domain", "")} · {theorem.get("topic", "")}')]
    if theorem.get("statement"):
        parts.append(_row("", theorem["statement"]))
    for condition in theorem.get("conditions") or []:
        parts.append(_row("If", condition))
    roles = theorem.get("roles") or {}
    if roles:
        rows = "".join(f"<tr><td><code>{text(name)}</code></td><td>{text((info or {}).get('meaning', ''))}</td>"
                       f"<td>{text((info or {}).get('unit', '') or '')}</td></tr>" for name, info in roles.items())
        parts.append(f'<div class="tt-row"><span class="tt-key">Roles</span></div><table class="tt-roles">'
                     f"<tr><th>role</th><th>meaning</th><th>unit</th></tr>{rows}</table>")
    for relation in theorem.get("relations") or []:
        parts.append(_row("Then", relation))
    aliases = theorem.get("aliases") or {}
    names = [a for key in ("en", "zh") for a in (aliases.get(key) or [])]
    if names:
        parts.append(_row("Also", _list(names), raw=True))
    for example in (theorem.get("examples") or [])[:2]:
        parts.append(_row("Example", worked_example(theorem, example)))
    parts.append("</div>")
    return "".join(parts)


def worked_example(theorem: dict, example: dict) -> str:
    """"angle1 = 50, angle2 = 60 → angle1 + angle2 + angle3 = 180": the example's values next to the relation."""
    values = ", ".join(f"{role} = {value}" for role, value in example.items())
    relations = "; ".join(theorem.get("relations") or [])
    return f"{values}   ({relations})" if relations else values


# -------------------------------------------------------------------------------------------------- values
def math_value(value: Any, angle: bool = False) -> str:
    r"""A value for the page: "134°", "5", or LaTeX ($\frac{15\sqrt{2}}{2}$) for anything that is not a plain
    number; `angle` adds the degree sign a bare number lacks. Escaped; KaTeX renders the $...$."""
    raw = "" if value is None else str(value).strip()
    if not raw:
        return ""
    degrees = angle or "°" in raw
    plain = raw.replace("°", "").strip()
    if re.fullmatch(r"-?\d+(?:\.\d+)?", plain):
        return text(plain + ("°" if degrees else ""))
    try:
        import sympy

        from theorem_bank.safe_math import to_sympy

        expr = to_sympy(plain)
        if expr.free_symbols:
            return text(raw)
        if expr.has(sympy.sin, sympy.cos, sympy.tan, sympy.asin, sympy.acos, sympy.atan):
            return text(f"≈ {float(expr):.4g}" + ("°" if degrees else ""))  # no closed form a student reads
        latex = sympy.latex(expr)
    except Exception:  # noqa: BLE001 - a value we cannot typeset is shown as written
        return text(raw)
    degree_mark = "^{\\circ}" if degrees else ""
    return text(f"${latex}{degree_mark}$")


# -------------------------------------------------------------------------------------------------- step cards
def badge(status: str, detail: str = "") -> str:
    label, css = BADGES.get(status, BADGES["unverifiable"])
    title = f' title="{text(detail)}"' if detail else ""
    return f'<span class="tt-badge {css}"{title}>{label}</span>'


# checker reasons (written for developers) -> what a student can do with them
_PLAIN_REASONS = [
    (re.compile(r"unknown theorem id"), "this theorem is not in the tutor's theorem bank, so its relation is unknown"),
    (re.compile(r"no value is known for ([^;]+?)(?:;|$)"),
     "the step needs the value of {0}, which neither the problem nor an earlier step gives"),
    (re.compile(r"the relation does not involve ([^;]+?);"),
     "the theorem's relation does not contain {0}, the quantity this step claims to find"),
    (re.compile(r"depends on unknown ([^;]+)"), "the value it states depends on {0}, which is not known yet"),
    (re.compile(r"took too long"), "checking it took too long, so the tutor skipped it"),
    (re.compile(r"no Exec to check"), "the step has no calculation (Exec line) to check"),
    (re.compile(r"no relation before"), "the step states a result without the relation it comes from"),
    (re.compile(r"no conclusion|must start with the object|is not of the form"),
     "the step does not say which quantity it finds ('=> ∠ABC = …')"),
    (re.compile(r"cannot be evaluated"), "the relation cannot be evaluated with these values"),
    (re.compile(r"cannot read|ignored|could not be checked"), "the tutor could not read the step's calculation"),
]


def plain_reason(reason: str) -> str:
    """Why a step could not be checked, in plain language (the checker's own wording stays in the detail)."""
    for pattern, words in _PLAIN_REASONS:
        m = pattern.search(reason or "")
        if m:
            return words.format(*[g.strip() for g in m.groups()])
    return "the tutor could not check this step"


def step_status(check: Any, grounding: Any = None) -> str:
    """The badge of a step: verified only when its arithmetic checks AND it is grounded in the problem."""
    status = getattr(check, "status", None) or "pending"
    if status == "verified" and grounding is not None and not grounding.grounded:
        return "ungrounded"
    return status


HINT_STAGES = ("Which theorem", "The binding", "The relation")


def step_card(index: int, step: Any, check: Any = None, theorem: dict | None = None, *, writing: bool = False,
              grounding: Any = None, stage: int = 3, conclusion_angle: bool = False) -> str:
    """One ⟨Cond, Map, Exec⟩ step; `check` is a StepCheck (or None while pending), `grounding` a StepGrounding.
    `stage` < 3 is a hint: 1 shows which theorem, 2 adds the binding (Cond, Map), 3 is the whole step."""
    tid = str(getattr(step, "theorem", "") or "")
    name = (theorem or {}).get("name") or getattr(step, "name", "") or tid
    status = "writing" if writing else step_status(check, grounding)
    if stage < 3:
        status = "pending"
    css = BADGES.get(status, BADGES["unverifiable"])[1]
    link = f'<a href="#{anchor_id(tid)}">{text(name)}</a>' if theorem else text(name)
    shown_badge = badge(status) if stage >= 3 else f'<span class="tt-hint-label"> · hint: {HINT_STAGES[stage - 1].lower()}</span>'
    parts = [f'<div class="tt-card tt-step {css}" data-step="{index}" data-status="{status}">',
             f'<h4>Step {index}: {link}{shown_badge}</h4>']
    if stage < 3 and theorem and theorem.get("statement"):
        parts.append(_row("", theorem["statement"]))
    fields = (("Cond", "cond"), ("Map", "map"), ("Exec", "exec"))[: (0 if stage <= 1 else 2 if stage == 2 else 3)]
    for key, attr in fields:
        value = getattr(step, attr, "") or ""
        if value or not writing:
            parts.append(_row(key, value or "—"))
    if check is not None and not writing and stage >= 3:
        parts.append(_check_line(check, theorem is None and bool(tid), grounding))
    if stage >= 3:
        parts.append(f'<div class="tt-row tt-id">bank id: {text(tid or "none")}</div>')
    parts.append("</div>")
    return "".join(parts)


def _check_line(check: Any, unknown_theorem: bool, grounding: Any = None) -> str:
    status, reason, expected = getattr(check, "status", ""), getattr(check, "reason", ""), getattr(check, "expected", None)
    ungrounded = grounding is not None and not grounding.grounded
    where = f" But {text(grounding.reason())}." if ungrounded else ""
    if status == "verified" and not ungrounded:
        return ('<div class="tt-row tt-why">Checked: the values fit the theorem\'s relation, and every point and '
                'given it uses is in the problem.</div>')
    if status == "verified":
        return f'<div class="tt-row tt-why">The arithmetic is right.{where} So it is not counted as verified.</div>'
    if status == "wrong":
        first = str(expected).split(";")[0].split("≈")[0].strip() if expected not in (None, "") else ""
        fix = f" With these values the relation gives {math_value(first)}." if first else ""
        return f'<div class="tt-row tt-why">The numbers do not fit the theorem\'s relation.{fix}{where}</div>'
    why = plain_reason(reason) if reason else ("this theorem is not in the tutor's theorem bank" if unknown_theorem
                                              else "the tutor could not check this step")
    # the checker's own wording is for developers: it stays in the row's title (hover), not in the text
    title = f' title="{text(reason)}"' if reason else ""
    return f'<div class="tt-row tt-why"{title}>Not checked: {text(why)}.{where}</div>'


def steps_html(steps: Sequence[Any], checks: Sequence[Any], theorems: dict[str, dict], *, shown: int | None = None,
               streaming_last: bool = False, groundings: Sequence[Any] = (), stage: int = 3) -> str:
    """All step cards; `shown` limits them (hint mode, the last shown at hint `stage`); the last one is marked
    "writing" while it streams."""
    visible = list(steps) if shown is None else list(steps)[:shown]
    cards = []
    for i, step in enumerate(visible):
        writing = streaming_last and i == len(steps) - 1
        check = checks[i] if i < len(checks) else None
        grounding = groundings[i] if i < len(groundings) else None
        card_stage = stage if (shown is not None and i == len(visible) - 1) else 3
        cards.append(step_card(i + 1, step, check, theorems.get(str(getattr(step, "theorem", ""))), writing=writing,
                               grounding=grounding, stage=card_stage))
    return "\n".join(cards)


def summary(checks: Sequence[Any], groundings: Sequence[Any] = ()) -> str:
    """"3 steps: 2 verified, 1 wrong" -- the line above the answer (verified means checked AND grounded)."""
    counts: dict[str, int] = {}
    for i, check in enumerate(checks):
        status = step_status(check, groundings[i] if i < len(groundings) else None)
        counts[status] = counts.get(status, 0) + 1
    words = {"ungrounded": "not grounded", "unverifiable": "not checked"}
    order = [s for s in ("verified", "ungrounded", "wrong", "unverifiable") if counts.get(s)]
    detail = ", ".join(f"{counts[s]} {words.get(s, s)}" for s in order)
    return f"{len(checks)} step{'s' if len(checks) != 1 else ''}" + (f": {detail}" if detail else "")


# -------------------------------------------------------------------------------------------------- answer box
CONFIDENCE_WORDS = {
    "high": "✓ Checked: every step uses this problem's own points and givens, and each relation holds.",
    "medium": "Probably right, but check it: every step is grounded in the problem and executes, but {why}.",
    "low": "Not checked: {why}. Treat this value as a guess.",
    "none": "The tutor could not get a value from these steps.",
}


def answer_box(answer: dict, choices: Sequence[str] | None = None) -> str:
    """The final answer box from plain data (app.handlers.answer_view): the tutor's value, the choice it equals
    (never another letter), the confidence wording and colour, agreement of the samples, the model's own line."""
    confidence = answer.get("confidence", "none")
    value, letter = answer.get("value"), answer.get("letter")
    parts = [f'<div class="tt-answer tt-conf-{confidence}" data-confidence="{confidence}">']
    if value is None:
        parts.append(f'<b>Answer:</b> <span class="tt-answer-value">no value</span>')
    else:
        parts.append(f'<b>Tutor\'s answer:</b> <span class="tt-answer-value">'
                     f'{math_value(value, answer.get("angle", False))}</span>')
        if choices:
            if letter:
                idx = index_of(letter)
                idx = -1 if idx is None else idx
                choice = choices[idx] if 0 <= idx < len(choices) else ""
                parts.append(f' — choice <b class="tt-choice">{text(letter)}</b> ({text(choice)})')
            else:
                parts.append(' — <span class="tt-no-choice">none of the choices equals this value</span>')
    words = CONFIDENCE_WORDS[confidence].format(why=text(answer.get("why") or ""))
    parts.append(f'<div class="tt-verdict">{words}</div>')
    if answer.get("summary"):
        parts.append(f'<div class="tt-why">{text(answer["summary"])}</div>')
    if answer.get("total", 1) > 1:
        parts.append(f'<div class="tt-agree">{answer.get("agree", 0)} of {answer["total"]} solutions agree '
                     f'on this value.</div>')
    if answer.get("model_answer"):
        parts.append(f'<div class="tt-model-answer">The model\'s own Answer line said “{text(answer["model_answer"])}”; '
                     "the tutor's value comes from running the steps, not from that line.</div>")
    parts.append("</div>")
    return "".join(parts)


def alternatives_html(alternatives: Sequence[dict]) -> str:
    """The other sampled solutions, folded: each with its value, choice, step badges and its steps."""
    if not alternatives:
        return ""
    items = []
    for alt in alternatives:
        value = math_value(alt["value"], alt.get("angle", False)) if alt.get("value") is not None else "no value"
        choice = f" (choice {text(alt['letter'])})" if alt.get("letter") else ""
        items.append(f'<div class="tt-alt"><b>Solution {alt["number"]}:</b> {value}{choice} · {text(alt["summary"])}'
                     f'<details><summary>its steps</summary>{alt["steps_html"]}</details></div>')
    n = len(alternatives)
    return (f'<details class="tt-alts"><summary>See the other {n} solution{"s" if n != 1 else ""} the tutor '
            f'sampled</summary>{"".join(items)}</details>')


def plain_output(raw: str, note: str) -> str:
    """Model text that holds no theorem steps, shown as it came with a note saying so."""
    return notice(note, "note") + f'<div class="tt-plain">{text(raw) or "(empty)"}</div>'


def search_results(hits: Sequence[Any]) -> str:
    """The bank tab's results list (compact cards)."""
    if not hits:
        return notice("No theorem matched. Try other words, e.g. \"parallel lines angle\" or \"circle area\".", "note")
    return "\n".join(theorem_card(getattr(hit, "theorem", hit), getattr(hit, "reason", ""), anchor=False) for hit in hits)
