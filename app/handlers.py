"""The tutor's behaviour as plain functions: inputs in, rendered Markdown/HTML out (generators when it streams).

`ui.py` only wires these to components, so every path here -- bad input, a model that writes no steps, a backend
that dies mid-stream -- is tested by calling the function directly with the tiny model.
"""
from __future__ import annotations

import logging
import re
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
    return {"problem": None, "output": "", "done": False, "hint": False, "shown": None, "stage": 3, "model": {},
            "samples": [], "chosen": None, "answer_html": None, "answer_view": None, "shown_answer": "",
            "badges": [], "solve_id": None}


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


def context_for(problem: dict | None):
    """What a step may refer to (model.grounding): the question's and choices' points and numbers. The app does
    not know the diagram's letters, so a point only the picture shows counts as not grounded."""
    from model.grounding import problem_context

    problem = problem or {}
    return problem_context(problem.get("question") or "", problem.get("choices"))


def _theorems_of(steps, bank) -> dict[str, dict]:
    theorems = {}
    for step in steps:
        theorem = bank.get(step.theorem) if bank is not None and step.theorem else None
        if theorem:
            theorems[step.theorem] = theorem
    return theorems


def render_output(text: str, bank, choices: list[str] | None, *, final: bool, shown: int | None = None,
                  stage: int = 3, check_cache: dict | None = None, context=None, answer: str | None = None
                  ) -> Rendered:
    """Parse the (possibly half-streamed) model text and render step cards with their badges, and the answer.

    Badges ground each step in the problem (`context`, model.grounding): arithmetic that checks on points or givens
    the problem does not have is "not grounded", never "verified". `shown`/`stage` are hint mode (the first `shown`
    steps, the last of them at hint `stage` 1-3); the answer appears only once every step is shown in full.
    `answer` is the answer box the caller built from the selection; at `final` without it, this text alone is
    selected. `check_cache` (the complete steps so far -> their checks) saves re-checking on every token.
    """
    from model.checker import check_solution
    from model.grounding import ground_solution, problem_context
    from model.solution_format import Solution, parse

    context = context or problem_context("", choices)
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
    groundings = ground_solution(steps[:complete], context) if complete else []
    theorems = _theorems_of(steps, bank)
    used = list(theorems.values())

    if not steps:
        if final:
            note = ("The model answered without any theorem steps (Theorem / Cond / Map / Exec), so nothing could "
                    "be checked. Its text is shown as it came.")
            body = render.plain_output(text.strip(), note) if text.strip() else render.notice(
                "The model returned no text. Try again, or rephrase the question.", "note")
            box = render.answer_box({"value": None, "confidence": "none"}, choices) if text.strip() else ""
            return Rendered(body, box, render.notice("Done (no steps).", "info"), used, 0)
        preview = render.plain_output(text.strip(), "Waiting for the first theorem step…") if text.strip() else ""
        return Rendered(preview, "", render.notice("Writing…", "info", progress=True), used, 0)

    hidden = shown is not None and (shown < len(steps) or stage < 3)
    preamble = f'<div class="tt-plain">{render.text(solution.preamble.strip())}</div>' if solution.preamble.strip() else ""
    cards = render.steps_html(steps, checks, theorems, shown=shown, streaming_last=complete < len(steps),
                              groundings=groundings, stage=stage)
    if hidden:
        cards += "\n" + render.notice("More is hidden: press Next hint for the next part, or Show full solution.",
                                      "info")
    box = ""
    if not hidden and final:
        box = answer if answer is not None else answer_for([text], bank, context, choices)[0]
    if final:
        status = render.notice(f"Done. {render.summary(checks, groundings)}.", "info")
        if solution.answer is None:
            status += render.notice("The model stopped before writing an Answer line.", "note")
    else:
        status = render.notice(f"Writing step {len(steps)}…", "info", progress=True)
    if shown is not None:  # hint mode
        total = 3 * len(steps)
        revealed = 3 * (min(shown, len(steps)) - 1) + stage
        part = render.HINT_STAGES[stage - 1].lower()
        last = " That was the last hint." if not hidden and final else ""
        status = render.notice(f"Hint {revealed} of {total}{'' if final else '+'}: {part} of step "
                               f"{min(shown, len(steps))}.{last}", "info")
    return Rendered(preamble + cards, box, status, used, len(steps))


def _step_key(step) -> tuple:
    return (step.theorem, step.cond, step.map, step.exec)


def _is_angle(candidate) -> bool:
    from model.grounding import conclusions

    steps = candidate.solution.steps
    targets = conclusions(steps[-1]) if steps else []
    return bool(targets) and targets[-1].startswith("∠")


def _why(candidate, total: int, has_choices: bool) -> str:
    """The reason a chain is not "high" confidence, in words (see model.selection.confidence)."""
    for i, ok in enumerate(candidate.step_ok):
        if ok:
            continue
        grounding = candidate.grounding[i]
        if not grounding.grounded:
            return f"step {i + 1} is not grounded: {grounding.reason()}"
        run = candidate.executed[i] if i < len(candidate.executed) else None
        reason = render.plain_reason(getattr(run, "reason", "")) if run is not None else "it was not executed"
        return f"step {i + 1} could not be executed ({reason})"
    reasons = []
    if not candidate.on_question:
        from model.grounding import conclusions

        last = conclusions(candidate.solution.steps[-1]) if candidate.solution.steps else []
        reasons.append(f"the steps end on {last[-1] if last else 'something'}, not on what the question asks")
    if has_choices and candidate.letter is None:
        reasons.append("no choice equals the value")
    wrong = [i + 1 for i, c in enumerate(candidate.written) if c.status != "verified"]
    if wrong:
        reasons.append(f"the model's own numbers were off in step {', '.join(map(str, wrong))} (the tutor used "
                       "the relation's value)")
    if total > 1 and 2 * candidate.agree < total:
        reasons.append(f"only {candidate.agree} of {total} solutions reach it")
    return "; ".join(reasons)


def _model_line(candidate, choices, value_letter: tuple[str | None, str | None]) -> str:
    """The model's own Answer line, when it differs from what the tutor shows (else "")."""
    from model.answers import extract_answer
    from model.selection import same_value

    try:
        extracted = extract_answer(candidate.text, choices=choices)
    except Exception:  # noqa: BLE001
        return ""
    raw = (candidate.solution.answer or "").strip()
    if not raw:
        return ""
    stated = without_letter(extracted.value or "").strip()
    value, letter = value_letter
    differs = not same_value(stated, value) or (extracted.letter is not None and extracted.letter != letter)
    return raw if differs else ""


def answer_view(selection, choices) -> dict:
    """Plain data of the answer box (what render.answer_box draws, and what feedback stores as shown)."""
    chosen = selection.chosen
    view = {"value": chosen.value, "letter": chosen.letter, "angle": _is_angle(chosen) if chosen.value else False,
            "confidence": selection.confidence, "agree": selection.agree, "total": selection.total,
            "summary": render.summary(chosen.written, chosen.grounding) if chosen.written else "",
            "why": _why(chosen, selection.total, bool(choices)) if selection.confidence in ("medium", "low") else "",
            "model_answer": _model_line(chosen, choices, (chosen.value, chosen.letter)),
            "chosen": chosen.index}
    return view


def answer_for(texts: Sequence[str], bank, context, choices) -> tuple[str, dict, Any]:
    """Select among the sampled texts (model.selection) and render the answer box and the alternatives."""
    from model.selection import select

    selection = select(list(texts), context, choices, bank)
    view = answer_view(selection, choices)
    alternatives = []
    for candidate in selection.alternatives():
        theorems = _theorems_of(candidate.solution.steps, bank)
        alternatives.append({
            "number": candidate.index + 1, "value": candidate.value, "letter": candidate.letter,
            "angle": _is_angle(candidate) if candidate.value else False,
            "summary": render.summary(candidate.written, candidate.grounding) if candidate.written else "no steps",
            "steps_html": render.steps_html(candidate.solution.steps, candidate.written, theorems,
                                            groundings=candidate.grounding)})
    return render.answer_box(view, choices) + render.alternatives_html(alternatives), view, selection


def shown_answer_text(view: dict, choices) -> str:
    """The answer box as a line of text, for feedback: exactly the value, choice and confidence shown."""
    if not view or view.get("value") is None:
        return "no value"
    letter = view.get("letter")
    if choices:
        choice = f" (choice {letter})" if letter else " (no choice matches)"
    else:
        choice = ""
    agree = f"; {view['agree']} of {view['total']} agree" if view.get("total", 1) > 1 else ""
    return f"{view['value']}{choice}; confidence {view['confidence']}{agree}"


def warm_up(bank, solution_text: str) -> None:
    """Parse, check and render one solution once at startup, so the first student does not pay for imports and
    caches (sympy, the checker, the bank connection) -- a cold first check can hit the checker's time limit."""
    if solution_text:
        render_output(solution_text, bank, None, final=True)


# ------------------------------------------------------------------------------------------------ solve
def upload_refusal(flag: Any) -> str | None:
    """The page's note that the browser refused the last upload ("name|bytes|limit bytes"), as a message."""
    flag = str(flag or "").strip()
    if not flag:
        return None
    name, _, rest = flag.partition("|")
    size, _, limit = rest.partition("|")
    try:
        size_mb, limit_mb = int(size) / 1e6, int(limit) / 1e6
        detail = f" ({size_mb:,.0f} MB; the limit is {limit_mb:,.0f} MB)"
    except ValueError:
        detail = ""
    return (f"Your diagram “{name[:80]}” was not accepted{detail}, so there is no diagram to solve with. Upload a "
            "smaller picture (a screenshot or a photo under the limit), or remove it to solve from the question "
            "text alone, then press Solve.")


def solve(tutor, bank, image, question, choice_a="", choice_b="", choice_c="", choice_d="", hint_mode=False,
          state: dict | None = None, upload_flag: str = "") -> Iterator[View]:
    """Stream a solution: theorem cards first, then step cards as the model writes them; then, with N > 1
    samples, the other chains; then the answer of the chain the tutor trusts."""
    import uuid

    state = empty_state()
    state["model"] = dict(tutor.identity)
    refused = upload_refusal(upload_flag)
    if refused and image in (None, ""):
        yield View(render.notice(refused, "error"), "", "", "", state)
        return
    try:
        problem = make_problem(image, question, (choice_a, choice_b, choice_c, choice_d))
    except InputProblem as err:
        yield View(render.notice(str(err), "error"), "", "", "", state)
        return
    state.update(problem=problem.to_state(), hint=bool(hint_mode), shown=1 if hint_mode else None,
                 stage=1 if hint_mode else 3, solve_id=uuid.uuid4().hex)
    intro = "" if problem.picture is not None else render.notice(
        "Solving without a diagram: the tutor reads only the question text.", "note")
    context = context_for(state["problem"])

    hits = []
    if bank is not None:
        try:
            query = problem.question + (" " + " ".join(problem.choices) if problem.choices else "")
            hits = unique_hits(bank.retrieve(query, k=RETRIEVE_K))
        except Exception:  # retrieval is a help, not a requirement
            log.exception("theorem retrieval failed")
            intro += render.notice("The theorem search failed; the model answers without theorem cards.", "note")
    theorem_pane = render.theorem_cards(hits)
    yield View(intro + render.notice("Reading the problem…", "info", progress=True), theorem_pane, "", "", state)

    text, last_render, cache = "", 0.0, {}
    retrieved_ids = {h.id for h in hits}

    def view(final: bool, extra_status: str = "", answer: str | None = None) -> View:
        shown = state["shown"] if state["hint"] else None
        stage = state.get("stage", 3) if state["hint"] else 3
        rendered = render_output(text, bank, problem.choices, final=final, shown=shown, stage=stage,
                                 check_cache=cache, context=context, answer=answer)
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

    texts = [text]
    wanted = int(getattr(tutor, "num_samples", 1) or 1)
    if wanted > 1 and text.strip():
        yield view(final=False, extra_status=render.notice(
            f"Checking {wanted - 1} more solution{'s' if wanted > 2 else ''} to compare with this one…", "info",
            progress=True))
        try:
            texts += list(tutor.sample(problem.question, problem.choices, problem.picture, bank, wanted - 1))
        except Exception:  # the first solution still stands alone
            log.exception("sampling more solutions failed")
            intro += render.notice("Only one solution could be written this time; it is shown alone.", "note")
    answer, shown_view, selection = answer_for(texts, bank, context, problem.choices)
    text = selection.chosen.text
    state.update(output=text, done=True, samples=texts, chosen=selection.chosen.index, answer_html=answer,
                 answer_view=shown_view, shown_answer=shown_answer_text(shown_view, problem.choices),
                 badges=[render.step_status(c, g) for c, g in zip(selection.chosen.written,
                                                                  selection.chosen.grounding)])
    if selection.chosen.index != 0:
        intro += render.notice(f"Showing solution {selection.chosen.index + 1} of {len(texts)}: the one whose steps "
                               "the checker trusts most. The first one written is among the others under the "
                               "answer.", "info")
    yield view(final=True, answer=answer)


def next_hint(bank, state: dict | None) -> tuple[str, str, str, dict]:
    """Reveal the next part of the solution: which theorem a step uses, then its binding, then its relation
    (earlier steps stay); after the last step's relation the answer shows too."""
    return _reveal(bank, state, step=1)


def show_full(bank, state: dict | None) -> tuple[str, str, str, dict]:
    return _reveal(bank, state, step=None)


def _reveal(bank, state, step: int | None):
    state = dict(state or empty_state())
    if not state.get("problem"):
        return render.notice("Solve a problem first; hints reveal its steps one at a time.", "note"), "", "", state
    choices = state["problem"].get("choices")
    context = context_for(state["problem"])
    total = render_output(state["output"], bank, choices, final=False, context=context).n_steps
    if step is None:
        state["shown"], state["hint"], state["stage"] = None, False, 3
    else:
        revealed = (3 * ((state.get("shown") or total or 1) - 1) + (state.get("stage") or 3)) if state.get("hint") \
            else 3 * max(total, 1)
        revealed = min(revealed + step, 3 * max(total, 1))
        state["shown"], state["stage"], state["hint"] = (revealed - 1) // 3 + 1, (revealed - 1) % 3 + 1, True
    rendered = render_output(state["output"], bank, choices, final=state["done"],
                             shown=state["shown"] if state["hint"] else None, stage=state.get("stage") or 3,
                             context=context, answer=state.get("answer_html"))
    return rendered.status, rendered.steps, rendered.answer, state


# ------------------------------------------------------------------------------------------------ feedback
def send_feedback(store, state: dict | None, rating: str, comment: str = "") -> str:
    """Store the rating with exactly what the student was shown; the same click again (same solution, same
    rating) updates that row instead of adding another."""
    if not state or not state.get("problem") or not state.get("output"):
        return render.notice("Solve a problem first, then rate the solution.", "note")
    shown = {"answer": state.get("shown_answer") or "", "badges": state.get("badges") or [],
             "chosen_sample": state.get("chosen"), "samples": len(state.get("samples") or [state["output"]]),
             "confidence": (state.get("answer_view") or {}).get("confidence")}
    intent = f"{state.get('solve_id') or ''}:{rating}"
    row, new = store.add(rating, state["problem"], state["output"], state.get("model") or {}, comment=comment or "",
                         answer=shown["answer"], shown=shown, intent=intent)
    word = "thumbs-up" if rating == "up" else "thumbs-down"
    if not new:
        return render.notice(f"Your {word} for this solution was already saved (#{row}); it is kept once"
                             f"{' with your new comment' if comment else ''}.", "info")
    return render.notice(f"Thanks, your {word} is saved (#{row}) with this problem and what the tutor showed.",
                         "info")


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
              "problem's objects, and its relation executed. A step is ✓ verified only when its relation holds with the "
              "Map values AND every point and given value it uses is in the problem (or was found by an earlier "
              "step); arithmetic that holds on points or values the problem does not have is marked \"arithmetic "
              "right, not grounded\". The answer box shows the value the tutor gets by running the steps, and the "
              "choice equal to it; green only when every step is grounded and checked."]
    return "\n".join(lines)
