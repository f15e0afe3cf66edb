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
    "wrong": ("✗ wrong", "tt-bad"),
    "unverifiable": ("? unverifiable", "tt-unk"),
    "pending": ("… checking", "tt-pending"),
    "writing": ("✎ writing", "tt-pending"),
}

CSS = """
.tt-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 14px; margin: 8px 0;
  background: var(--background-fill-primary);}
.tt-card h4 {margin: 0 0 6px 0; font-size: 1.02em;}
.tt-card .tt-row {margin: 3px 0; white-space: pre-wrap; overflow-wrap: anywhere;}
.tt-card .tt-key {display: inline-block; min-width: 3.6em; font-weight: 600; color: var(--body-text-color-subdued);}
.tt-theorem {border-left: 4px solid #6b8fd6;}
.tt-step {border-left: 4px solid #999;}
.tt-step.tt-ok {border-left-color: #2e9d4f;}
.tt-step.tt-bad {border-left-color: #d2453d;}
.tt-badge {display: inline-block; border-radius: 999px; padding: 1px 9px; font-size: 0.82em; font-weight: 600;
  margin-left: 8px; vertical-align: middle;}
.tt-badge.tt-ok {background: #dff3e4; color: #1d6b35;}
.tt-badge.tt-bad {background: #fbe1df; color: #9b231c;}
.tt-badge.tt-unk {background: #ececec; color: #555;}
.tt-badge.tt-pending {background: #eef2fb; color: #3c5aa6;}
.tt-why {color: var(--body-text-color-subdued); font-size: 0.9em;}
.tt-executed {margin-top: 0.3em; font-size: 0.95em;}
.tt-answer {border: 2px solid #2e9d4f; border-radius: 10px; padding: 10px 14px; margin: 8px 0; font-size: 1.1em;}
.tt-note {border-radius: 8px; padding: 8px 12px; margin: 8px 0; background: #fff6dd; color: #5b4500;}
.tt-error {border-radius: 8px; padding: 8px 12px; margin: 8px 0; background: #fbe1df; color: #7a1b15;}
.tt-info {border-radius: 8px; padding: 8px 12px; margin: 8px 0; background: #eef2fb; color: #243f7a;}
.tt-plain {white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--font-mono); font-size: 0.9em;
  border: 1px dashed var(--border-color-primary); border-radius: 8px; padding: 8px 12px;}
.tt-roles {border-collapse: collapse; margin: 4px 0;}
.tt-roles td, .tt-roles th {border: 1px solid var(--border-color-primary); padding: 2px 8px; text-align: left;}
.tt-card, .tt-answer, .tt-plain, .tt-note {font-family: var(--font), "DejaVu Sans", "Noto Sans Math", sans-serif;}
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


def notice(message: str, kind: str = "info") -> str:
    """A coloured message box: kind is "info", "note" (a warning) or "error"."""
    return f'<div class="tt-{kind}">{text(message)}</div>'


def _row(key: str, value: str, raw: bool = False) -> str:
    label = f'<span class="tt-key">{text(key)}</span> ' if key else ""
    return f'<div class="tt-row">{label}{value if raw else text(value)}</div>'


def _list(items: Iterable[Any]) -> str:
    return "; ".join(text(item) for item in items if str(item).strip())


# ----------------------------------------------------------------------------------------------- theorem cards
def theorem_card(theorem: dict, reason: str = "", *, anchor: bool = True, tag: str = "") -> str:
    """One retrieved theorem: name, statement, conditions, relation, and why it was retrieved."""
    tid = str(theorem.get("id", ""))
    attrs = f' id="{anchor_id(tid)}"' if anchor else ""
    parts = [f'<div class="tt-card tt-theorem"{attrs}>',
             f'<h4>{text(theorem.get("name") or tid)} <code>{text(tid)}</code>{f" <small>{text(tag)}</small>" if tag else ""}</h4>']
    if theorem.get("statement"):
        parts.append(_row("", theorem["statement"]))
    if theorem.get("conditions"):
        parts.append(_row("If", _list(theorem["conditions"]), raw=True))
    if theorem.get("relations"):
        parts.append(_row("Then", _list(theorem["relations"]), raw=True))
    if reason:
        parts.append(f'<div class="tt-row tt-why">Why retrieved: {text(reason)}</div>')
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
    parts = [f'<div class="tt-card tt-theorem"><h4>{text(theorem.get("name"))} <code>{text(theorem.get("id"))}</code></h4>',
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


# -------------------------------------------------------------------------------------------------- step cards
def badge(status: str, detail: str = "") -> str:
    label, css = BADGES.get(status, BADGES["unverifiable"])
    title = f' title="{text(detail)}"' if detail else ""
    return f'<span class="tt-badge {css}"{title}>{label}</span>'


def step_card(index: int, step: Any, check: Any = None, theorem: dict | None = None, *, writing: bool = False) -> str:
    """One ⟨Cond, Map, Exec⟩ step; `check` is a StepCheck (status, reason, expected) or None while pending."""
    tid = str(getattr(step, "theorem", "") or "")
    name = (theorem or {}).get("name") or getattr(step, "name", "") or tid
    status = "writing" if writing else (getattr(check, "status", None) or "pending")
    css = BADGES.get(status, BADGES["unverifiable"])[1]
    link = f'<a href="#{anchor_id(tid)}">{text(name)}</a>' if theorem else text(name)
    parts = [f'<div class="tt-card tt-step {css}" data-step="{index}">',
             f'<h4>Step {index}: {link} <code>{text(tid)}</code>{badge(status)}</h4>']
    for key, attr in (("Cond", "cond"), ("Map", "map"), ("Exec", "exec")):
        value = getattr(step, attr, "") or ""
        if value or not writing:
            parts.append(_row(key, value or "—"))
    if check is not None and not writing:
        parts.append(_check_line(check, theorem is None and bool(tid)))
    parts.append("</div>")
    return "".join(parts)


def _check_line(check: Any, unknown_theorem: bool) -> str:
    status, reason, expected = getattr(check, "status", ""), getattr(check, "reason", ""), getattr(check, "expected", None)
    if status == "verified":
        return f'<div class="tt-row tt-why">Checked: {text(reason or "the relation holds with these values")}</div>'
    if status == "wrong":
        fix = f" The correct value is {text(expected)}." if expected not in (None, "") else ""
        return f'<div class="tt-row tt-why">Wrong: {text(reason)}{fix}</div>'
    why = reason or ("this theorem is not in the bank" if unknown_theorem else "the checker could not evaluate it")
    return f'<div class="tt-row tt-why">Not checked: {text(why)}</div>'


def steps_html(steps: Sequence[Any], checks: Sequence[Any], theorems: dict[str, dict], *, shown: int | None = None,
               streaming_last: bool = False) -> str:
    """All step cards; `shown` limits them (hint mode); the last one is marked "writing" while it streams."""
    visible = list(steps) if shown is None else list(steps)[:shown]
    cards = []
    for i, step in enumerate(visible):
        writing = streaming_last and i == len(steps) - 1
        check = checks[i] if i < len(checks) else None
        cards.append(step_card(i + 1, step, check, theorems.get(str(getattr(step, "theorem", ""))), writing=writing))
    return "\n".join(cards)


def summary(checks: Sequence[Any]) -> str:
    """"3 steps: 2 verified, 1 wrong" -- the line above the answer."""
    counts: dict[str, int] = {}
    for check in checks:
        counts[check.status] = counts.get(check.status, 0) + 1
    order = [s for s in ("verified", "wrong", "unverifiable") if counts.get(s)]
    detail = ", ".join(f"{counts[s]} {s}" for s in order)
    return f"{len(checks)} step{'s' if len(checks) != 1 else ''}" + (f": {detail}" if detail else "")


def answer_html(value: str | None, letter: str | None = None, choices: Sequence[str] | None = None,
                raw_answer: str | None = None, check_summary: str = "",
                executed: tuple[str, str | None, bool] | None = None) -> str:
    """The final answer box, with the matching choice when the problem has choices, and the value the checker's
    run of the steps gives (`executed`: value, its choice letter, whether it agrees with the model's answer)."""
    executed_html = _executed_html(executed)
    if not value and not letter:
        shown = raw_answer.strip() if raw_answer else ""
        if not shown:
            return notice("The model gave no final answer line.", "note") + executed_html
        return f'<div class="tt-answer"><b>Answer:</b> {text(shown)}{executed_html}</div>'
    parts = [f'<div class="tt-answer"><b>Answer:</b> <span class="tt-answer-value">{text(value or "")}</span>']
    if letter:
        parts.append(_choice_html(letter, choices))
    if check_summary:
        parts.append(f'<div class="tt-why">{text(check_summary)}</div>')
    parts.append(executed_html)
    parts.append("</div>")
    return "".join(parts)


def _choice_html(letter: str, choices: Sequence[str] | None) -> str:
    idx = index_of(letter)
    idx = -1 if idx is None else idx
    choice = choices[idx] if choices and 0 <= idx < len(choices) else ""
    return f' — choice <b class="tt-choice">{text(letter.upper())}</b>' + (f" ({text(choice)})" if choice else "")


def _executed_html(executed: tuple[str, str | None, bool] | None) -> str:
    if executed is None:
        return ""
    value, letter, agrees = executed
    if agrees:
        return '<div class="tt-executed">✓ Running these steps through the checker gives the same value.</div>'
    choice = _choice_html(letter, None) if letter else ""
    return ('<div class="tt-executed">✗ Running these steps through the checker gives '
            f'<b class="tt-executed-value">{text(value)}</b>{choice} instead: trust the checked value.</div>')


def plain_output(raw: str, note: str) -> str:
    """Model text that holds no theorem steps, shown as it came with a note saying so."""
    return notice(note, "note") + f'<div class="tt-plain">{text(raw) or "(empty)"}</div>'


def search_results(hits: Sequence[Any]) -> str:
    """The bank tab's results list (compact cards)."""
    if not hits:
        return notice("No theorem matched. Try other words, e.g. \"parallel lines angle\" or \"circle area\".", "note")
    return "\n".join(theorem_card(getattr(hit, "theorem", hit), getattr(hit, "reason", ""), anchor=False) for hit in hits)
