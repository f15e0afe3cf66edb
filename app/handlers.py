"""The tutor's behaviour as plain functions: inputs in, rendered Markdown/HTML out (generators when it streams).

`ui.py` only wires these to components, so every path here -- bad input, a model that writes no steps, a backend
that dies mid-stream -- is tested by calling the function directly with the tiny model.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

from app import render
from model.choices import CHOICE_LETTERS as ALPHABET, without_letter
from theorem_bank.text import valid_text

log = logging.getLogger("app")

MAX_QUESTION_CHARS = 4000  # a long competition problem is ~1,500 characters; beyond this it is a paste accident
MAX_CHOICE_CHARS = 300
RETRIEVE_K = 5
# Re-render at most this often while tokens stream (each render parses and checks the text so far).
RENDER_INTERVAL_S = 0.12
CHOICE_LETTERS = ALPHABET[:4]  # the page has four choice boxes


class View(NamedTuple):
    """What the Solve tab shows: one value per output pane, plus the session state."""
    status: str
    theorems: str
    steps: str
    answer: str
    state: dict


def empty_state() -> dict:
    return {"problem": None, "output": "", "done": False, "hint": False, "shown": None, "model": {}}


# ------------------------------------------------------------------------------------------------- input checks
class InputProblem(ValueError):
    """Input the tutor cannot work with; the message tells the student what to do."""


@dataclass
class Problem:
    question: str
    choices: list[str] | None = None
    image: str | None = None  # path of the uploaded diagram, kept for feedback
    picture: Any = None  # the diagram decoded and checked (RGB PIL image), what the model sees

    def to_state(self) -> dict:
        return {"question": self.question, "choices": self.choices, "image": self.image}


def check_question(question: Any) -> str:
    question = "" if question is None else str(question).replace("\x00", "").strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise InputProblem(
            f"The question is {len(question):,} characters long; the tutor reads at most {MAX_QUESTION_CHARS:,}. "
            "Paste only the problem statement (the diagram goes in the image box).")
    return question


def check_choices(values: Sequence[Any]) -> list[str] | None:
    """Choices A–D as typed; empty trailing boxes are dropped, a gap (A and C but no B) is an error."""
    texts = [("" if v is None else str(v)).strip() for v in values][: len(CHOICE_LETTERS)]
    while texts and not texts[-1]:
        texts.pop()
    if not texts:
        return None
    for letter, value in zip(CHOICE_LETTERS, texts):
        if not value:
            raise InputProblem(f"Choice {letter} is empty but a later choice is filled; fill the choices in order "
                               "A, B, C, D or leave them all empty.")
        if len(value) > MAX_CHOICE_CHARS:
            raise InputProblem(f"Choice {letter} is {len(value):,} characters long; keep each choice under "
                               f"{MAX_CHOICE_CHARS} characters.")
    if len(texts) < 2:
        raise InputProblem("Only choice A is filled; give at least two choices, or none for an open question.")
    return texts


def check_image(image: Any):
    """Decode the upload through model.images (bomb-safe, RGB on white); a bad file becomes a message."""
    if image is None or image == "":
        return None
    from model import images

    try:
        return images.open_image(image)
    except images.ImageError as err:
        raise InputProblem(f"The diagram could not be used: {_upload_label(err, image)}") from None


def _upload_label(err: Exception, image: Any) -> str:
    # Gradio stores uploads under a temp path the student never saw; name the file as "the uploaded file".
    message = str(err)
    if isinstance(image, (str, Path)):
        message = message.replace(f"image file {Path(str(image)).expanduser()}", "the uploaded file")
    return message


def make_problem(image: Any, question: Any, choices: Sequence[Any] = ()) -> Problem:
    """Validate everything the student gave, in the order they would fix it."""
    question = check_question(question)
    has_image = image not in (None, "")
    if not has_image and not question:
        raise InputProblem("Give the tutor a problem: upload or paste the diagram and type the question "
                           "(or pick one of the examples below), then press Solve.")
    picture = check_image(image)
    if not question:
        raise InputProblem("The diagram is in. Now type the question about it (for example \"Find ∠ABC\") "
                           "and press Solve.")
    path = str(image) if isinstance(image, (str, Path)) else None
    return Problem(question=question, choices=check_choices(choices), image=path, picture=picture)


# ------------------------------------------------------------------------------------------------ rendering
@dataclass
class Rendered:
    steps: str
    answer: str
    status: str
    used_theorems: list[dict] = field(default_factory=list)
    n_steps: int = 0


def render_output(text: str, bank, choices: list[str] | None, *, final: bool, shown: int | None = None,
                  check_cache: dict | None = None) -> Rendered:
    """Parse the (possibly half-streamed) model text and render step cards, checks and the answer.

    `shown` hides steps after the first `shown` ones (hint mode); the answer appears only once every step is shown.
    `check_cache` (the complete steps so far -> their checks) saves re-checking the same prefix on every token.
    """
    from model.checker import check_solution
    from model.solution_format import Solution, parse

    solution = parse(text)
    steps = list(solution.steps)
    # While streaming, the last step may still be missing its Exec line: it is not complete until another
    # step or the Answer line follows it.
    complete = len(steps) if (final or solution.answer is not None) else max(0, len(steps) - 1)
    checks = []
    if complete:
        key = (complete, tuple(_step_key(s) for s in steps[:complete]))
        if check_cache is not None and key in check_cache:
            checks = check_cache[key]
        else:
            try:
                checks = list(check_solution(Solution(steps=steps[:complete], answer=None, problems=[]), bank=bank))
            except Exception:  # the checker must never take a solution down with it
                log.exception("checker failed")
                checks = []
            if check_cache is not None:
                check_cache[key] = checks
    theorems = {}
    for step in steps:
        theorem = bank.get(step.theorem) if bank is not None and step.theorem else None
        if theorem:
            theorems[step.theorem] = theorem
    used = list(theorems.values())

    if not steps:
        if final:
            note = ("The model answered without any theorem steps (Theorem / Cond / Map / Exec), so nothing could "
                    "be checked. Its text is shown as it came.")
            body = render.plain_output(text.strip(), note) if text.strip() else render.notice(
                "The model returned no text. Try again, or rephrase the question.", "note")
            answer = _answer(text, solution, choices, []) if solution.answer else ""
            return Rendered(body, answer, render.notice("Done (no steps).", "info"), used, 0)
        preview = render.plain_output(text.strip(), "Waiting for the first theorem step…") if text.strip() else ""
        return Rendered(preview, "", render.notice("Writing…", "info"), used, 0)

    hidden = shown is not None and shown < len(steps)
    preamble = f'<div class="tt-plain">{render.text(solution.preamble.strip())}</div>' if solution.preamble.strip() else ""
    cards = render.steps_html(steps, checks, theorems, shown=shown, streaming_last=complete < len(steps))
    if hidden:
        more = len(steps) - shown
        cards += "\n" + render.notice(f"{more} more step{'s' if more != 1 else ''} hidden: press Next hint, "
                                      "or Show full solution.", "info")
    answer = ""
    if not hidden and (final or solution.answer is not None):
        answer = _answer(text, solution, choices, checks, bank)
    if final:
        status = render.notice(f"Done. {render.summary(checks)}.", "info")
        if solution.answer is None:
            status += render.notice("The model stopped before writing an Answer line.", "note")
    else:
        status = render.notice(f"Writing step {len(steps)}…", "info")
    if shown is not None:  # hint mode
        last = "" if hidden or not final else " That was the last step."
        status = render.notice(f"Hint {min(shown, len(steps))} of {len(steps)}{'' if final else '+'}.{last}", "info")
    return Rendered(preamble + cards, answer, status, used, len(steps))


def _step_key(step) -> tuple:
    return (step.theorem, step.cond, step.map, step.exec)


def _answer(text: str, solution, choices, checks, bank=None) -> str:
    from model.answers import extract_answer

    try:
        extracted = extract_answer(text, choices=choices)
        value, letter = extracted.value, extracted.letter
        if letter and value:  # "34° (A)" is shown as "34° — choice A (34°)", not with the letter twice
            value = without_letter(value) or value
    except Exception:
        log.exception("answer extraction failed")
        value, letter = None, None
    return render.answer_html(value, letter, choices, raw_answer=solution.answer,
                              check_summary=render.summary(checks) if checks else "",
                              executed=_executed_answer(solution, bank, choices, value))


def _executed_answer(solution, bank, choices, stated: str | None) -> tuple[str, str | None, bool] | None:
    """(value, choice letter, agrees with the model's answer) of the checker's own run of the steps: the tutor's
    answer, which carries each step's executed value forward instead of the model's arithmetic."""
    from model import answers
    from model.checker import execute_solution

    if not solution.steps:
        return None
    try:
        value = execute_solution(solution, bank=bank)[-1].derived
        if value is None:
            return None
        letter = answers.match_choice(value, answers.choice_map(choices)) if choices else None
        agrees = bool(stated) and bool(answers.grade(stated, value))
    except Exception:  # noqa: BLE001 - the answer box must render whatever the model wrote
        log.exception("executing the steps failed")
        return None
    return value, letter, agrees


def warm_up(bank, solution_text: str) -> None:
    """Parse, check and render one solution once at startup, so the first student does not pay for imports and
    caches (sympy, the checker, the bank connection) -- a cold first check can hit the checker's time limit."""
    if solution_text:
        render_output(solution_text, bank, None, final=True)


# ------------------------------------------------------------------------------------------------ solve
def solve(tutor, bank, image, question, choice_a="", choice_b="", choice_c="", choice_d="", hint_mode=False,
          state: dict | None = None) -> Iterator[View]:
    """Stream a solution: theorem cards first, then step cards as the model writes them, then the answer."""
    state = empty_state()
    state["model"] = dict(tutor.identity)
    try:
        problem = make_problem(image, question, (choice_a, choice_b, choice_c, choice_d))
    except InputProblem as err:
        yield View(render.notice(str(err), "error"), "", "", "", state)
        return
    state.update(problem=problem.to_state(), hint=bool(hint_mode), shown=1 if hint_mode else None)
    intro = ""

    hits = []
    if bank is not None:
        try:
            query = problem.question + (" " + " ".join(problem.choices) if problem.choices else "")
            hits = unique_hits(bank.retrieve(query, k=RETRIEVE_K))
        except Exception as err:  # retrieval is a help, not a requirement
            log.exception("theorem retrieval failed")
            intro += render.notice(f"Theorem retrieval failed ({err}); the model answers without theorem cards.", "note")
    theorem_pane = render.theorem_cards(hits)
    yield View(intro + render.notice("Reading the problem…", "info"), theorem_pane, "", "", state)

    text, last_render, cache = "", 0.0, {}
    retrieved_ids = {h.id for h in hits}

    def view(final: bool, extra_status: str = "") -> View:
        shown = state["shown"] if state["hint"] else None
        rendered = render_output(text, bank, problem.choices, final=final, shown=shown, check_cache=cache)
        extra = [t for t in rendered.used_theorems if t.get("id") not in retrieved_ids]
        pane = render.theorem_cards(hits, extra) if extra else theorem_pane
        return View(intro + (extra_status or rendered.status), pane, rendered.steps, rendered.answer, state)

    try:
        # The model's prompt lists the theorems its serving profile says (retrieved by problem_messages, as in
        # training); the cards above are the student's, retrieved more widely.
        for piece in tutor.stream(problem.question, problem.choices, problem.picture, bank):
            text += piece
            state["output"] = text
            now = time.monotonic()
            if now - last_render >= RENDER_INTERVAL_S or "\n" in piece:
                last_render = now
                yield view(final=False)
    except Exception as err:  # a dead backend must not take the app down: show what we have and the error
        log.exception("generation failed mid-stream")
        state["done"] = True
        what = (f"The model stopped with an error: {type(err).__name__}: {err}. The text above is what it wrote "
                "before the error." if text else f"The model could not answer: {type(err).__name__}: {err}.")
        yield view(final=True, extra_status=render.notice(what + " Press Solve to try again.", "error"))
        return
    state["done"] = True
    yield view(final=True)


def next_hint(bank, state: dict | None) -> tuple[str, str, str, dict]:
    """Reveal one more step (earlier ones stay); after the last step the answer shows too."""
    return _reveal(bank, state, step=1)


def show_full(bank, state: dict | None) -> tuple[str, str, str, dict]:
    return _reveal(bank, state, step=None)


def _reveal(bank, state, step: int | None):
    state = dict(state or empty_state())
    if not state.get("problem"):
        return render.notice("Solve a problem first; hints reveal its steps one at a time.", "note"), "", "", state
    choices = state["problem"].get("choices")
    total = render_output(state["output"], bank, choices, final=state["done"]).n_steps
    if step is None:
        state["shown"], state["hint"] = None, False
    else:
        state["shown"] = min((state.get("shown") or total) + step, max(total, 1))
        state["hint"] = True
    rendered = render_output(state["output"], bank, choices, final=state["done"],
                             shown=state["shown"] if state["hint"] else None)
    return rendered.status, rendered.steps, rendered.answer, state


# ------------------------------------------------------------------------------------------------ feedback
def send_feedback(store, state: dict | None, rating: str, comment: str = "") -> str:
    if not state or not state.get("problem") or not state.get("output"):
        return render.notice("Solve a problem first, then rate the solution.", "note")
    try:
        from model.answers import extract_answer

        answer = extract_answer(state["output"], choices=state["problem"].get("choices")).value or ""
    except Exception:
        answer = ""
    row = store.add(rating, state["problem"], state["output"], state.get("model") or {}, comment=comment or "",
                    answer=answer)
    word = "thumbs-up" if rating == "up" else "thumbs-down"
    return render.notice(f"Thanks, your {word} is saved (#{row}) with this problem and solution.", "info")


# ------------------------------------------------------------------------------------------------ theorem bank tab
def unique_hits(hits) -> list:
    """Retrieval hits with each theorem once (first, best-ranked, occurrence kept)."""
    seen, out = set(), []
    for hit in hits:
        if hit.id not in seen:
            seen.add(hit.id)
            out.append(hit)
    return out


def search_bank(bank, query: str, k: int = 12) -> tuple[str, list[tuple[str, str]]]:
    """Results pane and (label, id) choices for the results list; an empty query lists the whole bank."""
    query = (query or "").strip()[:500]
    if valid_text(query) != query:  # a lone surrogate (a broken paste, a hostile client) cannot be searched
        return (render.notice("The search held characters that are not valid text (shown as �); retype them "
                              "or remove them and search again.", "note"), [])
    if not query:
        theorems = bank.all()
        return (render.notice(f"{len(theorems)} theorems in the bank. Type to search, pick one to see details.", "info"),
                [(t["name"], t["id"]) for t in theorems])
    hits = unique_hits(bank.retrieve(query, k=k))
    if not hits:
        return render.search_results([]), []
    summary = render.notice(f"Best {len(hits)} match{'es' if len(hits) != 1 else ''} for “{query}”; pick one to see "
                            "its conditions, roles and a worked example.", "info")
    return summary, [(h.name, h.id) for h in hits]


def theorem_detail(bank, theorem_id: str | None) -> str:
    theorem = bank.get(theorem_id) if theorem_id else None
    return render.theorem_detail(theorem or {})


def about(identity: dict, bank=None) -> str:
    """Markdown for the About tab: what serves, and when it is the embedded demo, what that means."""
    lines = ["### What is serving", "",
             "| | in use |", "|---|---|",
             f"| Model | `{identity.get('model', '?')}` |",
             f"| Adapter | `{identity.get('adapter') or 'none'}` |",
             f"| Backend | {identity.get('backend', '?')} |",
             f"| Device | {identity.get('device', '?')} |"]
    if bank is not None:
        try:
            lines.append(f"| Theorem bank | {len(bank)} theorems |")
        except Exception:
            pass
    lines.append("")
    if identity.get("demo"):
        lines += ["", render.notice(identity.get("demo_note", ""), "note"), ""]
    if identity.get("warning"):
        lines += ["", render.notice(identity["warning"], "error"), ""]
    lines += ["### How to run the real model", "",
              "```bash",
              "# Theorem-SFT Qwen2.5-VL-7B on a GPU (base + LoRA adapter, or a merged checkpoint)",
              "python -m app --model Qwen/Qwen2.5-VL-7B-Instruct --adapter runs/theorem-sft/adapter --device cuda",
              "# or a model served by vLLM (OpenAI-compatible API)",
              "python -m app --backend openai --base-url http://127.0.0.1:8000/v1 --model theorem-sft",
              "```", "",
              "Each step is ⟨Cond, Map, Exec⟩: the theorem's premises in this problem, its roles bound to the "
              "problem's objects, and its relation executed. The badge on a step comes from a symbolic check of "
              "Exec with the Map values (✓ verified, ✗ wrong with the correct value, ? unverifiable with the reason)."]
    return "\n".join(lines)
