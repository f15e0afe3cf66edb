"""The Gradio layout: Solve (first), Theorem bank, About. Components are wired to app.handlers and nothing else."""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the tutor makes no calls home

import gradio as gr

from app import handlers, render
from app.serving import Loading, ready

TITLE = "Theorem Tutor"
# System fonts only: the default theme fetches Google Fonts, which an offline classroom machine cannot reach.
# DejaVu Sans carries ∠ ∥ ⊥ △ °.
# WenQuanYi Zen Hei / Noto Sans CJK carry the Chinese theorem aliases (scripts/setup.sh installs one).
FONTS = ["DejaVu Sans", "Noto Sans", "Segoe UI", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "system-ui", "sans-serif"]
MONO_FONTS = ["DejaVu Sans Mono", "Consolas", "monospace"]

APP_CSS = render.CSS + """
#tt-solve-btn {min-height: 44px;}
.tt-pane {min-height: 40px;}
#tt-bank-results .wrap {flex-direction: column; align-items: stretch;}
.tt-hidden {display: none !important;}
#tt-image .wrap, #tt-image .or, #tt-image .icon-wrap {color: #4b5563 !important;}
button[role="tab"], button[role="tab"][aria-selected="true"] {color: #1e3a8a !important;}
#tt-busy-bar {display: none; position: fixed; left: 0; right: 0; bottom: 0; z-index: 1000; padding: 10px 16px;
  background: #243f7a; color: #ffffff; font-weight: 600; text-align: center;}
body.tt-busy #tt-busy-bar {display: block;}
"""

# Runs in the browser before the Solve handler: a fixed "Solving…" bar (visible wherever a phone is scrolled) and,
# on a narrow screen, a scroll to the status pane that the steps stream under.
SOLVE_JS = """(...args) => {
  if (!document.querySelector('#tt-busy-bar')) {
    const bar = document.createElement('div');
    bar.id = 'tt-busy-bar';
    bar.setAttribute('role', 'status');
    bar.textContent = 'Solving… the steps appear as the tutor writes them.';
    document.body.appendChild(bar);
  }
  document.body.classList.add('tt-busy');
  const status = document.querySelector('#tt-status');
  if (status && window.innerWidth < 900) status.scrollIntoView({block: 'start'});
  return args;
}"""
# After the handler: the bar goes, and a phone scrolls to the answer.
SOLVED_JS = """() => {
  document.body.classList.remove('tt-busy');
  const answer = document.querySelector('#tt-answer');
  if (answer && window.innerWidth < 900) answer.scrollIntoView({block: 'start'});
}"""


def head(max_upload_bytes: int | None) -> str:
    """<head> additions: the busy bar, and a watcher that notes a diagram the browser will refuse for its size, so
    Solve can say so instead of silently solving without it (Gradio only shows a passing toast)."""
    limit = int(max_upload_bytes) if max_upload_bytes else 0
    return f"""<script>
(() => {{
  const LIMIT = {limit};
  function note(value) {{
    const box = document.querySelector('#tt-upload-flag textarea, #tt-upload-flag input');
    if (!box) return;
    box.value = value;
    box.dispatchEvent(new Event('input', {{bubbles: true}}));
  }}
  function check(files) {{
    if (!LIMIT || !files || !files.length) return;
    const file = files[0];
    note(file.size > LIMIT ? `${{file.name}}|${{file.size}}|${{LIMIT}}` : '');
  }}
  document.addEventListener('change', (e) => {{
    if (e.target && e.target.closest && e.target.closest('#tt-image') && e.target.files) check(e.target.files);
  }}, true);
  document.addEventListener('drop', (e) => {{
    if (e.target && e.target.closest && e.target.closest('#tt-image') && e.dataTransfer) check(e.dataTransfer.files);
  }}, true);
}})();
</script>"""


def theme() -> gr.themes.Base:
    # The Soft theme's labels and primary button sit near 3:1; every text here is held to 4.5:1 (WCAG AA),
    # checked in the browser test.
    return gr.themes.Soft(primary_hue="blue", font=FONTS, font_mono=MONO_FONTS).set(
        block_label_text_color="*primary_800", block_title_text_color="*primary_800",
        body_text_color_subdued="*neutral_600", block_info_text_color="*neutral_600",
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        checkbox_label_background_fill_selected="*primary_700", input_placeholder_color="*neutral_500",
    )


def diagram_input(**kwargs) -> gr.Image:
    """A gr.Image whose upload reaches the handler as a file path, not decoded by Gradio first.

    The stock preprocess opens the file with PIL: a corrupt or non-image upload, or a 20000×20000 bomb, would fail
    there with a generic error before our handler could explain it; model.images decodes it safely instead.
    (Patched on the instance: a gr.Image subclass would make Gradio write a .pyi stub next to this module.)
    """
    image = gr.Image(type="filepath", **kwargs)
    stock_preprocess = image.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        if getattr(payload, "path", None) and not str(getattr(payload, "url", "") or "").startswith("data:"):
            return str(payload.path)
        return stock_preprocess(payload)  # pasted data: URLs are decoded by Gradio

    image.preprocess = preprocess
    return image


LOADING_MODEL = "Loading the model… the first start takes a little while; your problem is solved as soon as it is ready."
LOADING_BANK = "Loading the theorem bank…"
LOADING_ABOUT = "Loading the model and the theorem bank…"
START_FAILED = "The tutor could not start: {err}. See the server's log, fix what it names and restart the app."


def solve_when_ready(tutor, bank, *args):
    """handlers.solve, once the tutor and the bank are loaded: until then the status says the model is loading
    (the other outputs are left as they are), and a failed load is said as an error, not raised."""
    if any(isinstance(part, Loading) and not part.ready for part in (tutor, bank)):
        yield render.notice(LOADING_MODEL, "info"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    try:
        model, theorems = ready(tutor), ready(bank)
    except RuntimeError as err:  # the loader's own error, logged in full by app.serving
        yield render.notice(START_FAILED.format(err=err), "error"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return
    yield from handlers.solve(model, theorems, *args)


def build_ui(tutor, bank, store=None, examples=()) -> gr.Blocks:
    """The whole app. `examples` are app.examples.Example objects (image path, question, choices, family).

    `tutor` and `bank` may be app.serving.Loading (python -m app opens them while the server already answers): the
    page is built without them, its bank list and About fill in once they are ready, and a Solve waits for them."""
    identity = tutor.preview if isinstance(tutor, Loading) else tutor.identity
    still_loading = isinstance(tutor, Loading) or isinstance(bank, Loading)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nGive a diagram and a question; the tutor answers as a chain of theorem "
                    "applications ⟨Cond, Map, Exec⟩ and checks each step.")
        if identity.get("warning"):
            gr.Markdown(render.notice(identity["warning"], "error"))
        elif identity.get("demo"):
            gr.Markdown(render.notice("Serving the embedded demo model (small, CPU, trained only on the synthetic "
                                      "curriculum: it picks the theorems and binds the values, the checker does the "
                                      "arithmetic). See About for what it can do and for the real model.", "note"))
        state = gr.State(handlers.empty_state())

        with gr.Tabs():
            with gr.Tab("Solve", id="solve"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=320):
                        image = diagram_input(label="Diagram (upload, paste or drag a PNG, JPEG or WebP)",
                                              sources=["upload", "clipboard"], height=220, elem_id="tt-image")
                        upload_flag = gr.Textbox(value="", elem_id="tt-upload-flag", elem_classes=["tt-hidden"],
                                                 show_label=False, container=False)
                        question = gr.Textbox(label="Question", lines=2, elem_id="tt-question",
                                              placeholder="e.g. AB ∥ CD and ∠EGB = 50°. Find ∠GHC.")
                        with gr.Accordion("Choices (optional)", open=True):
                            with gr.Row():
                                choice_boxes = [gr.Textbox(label=letter, min_width=60, elem_id=f"tt-choice-{letter}")
                                                for letter in handlers.CHOICE_LETTERS]
                        hint_mode = gr.Checkbox(label="Hint mode: reveal one step at a time", value=False,
                                                elem_id="tt-hint-mode")
                        with gr.Row():
                            solve_btn = gr.Button("Solve", variant="primary", elem_id="tt-solve-btn")
                            clear_btn = gr.ClearButton(value="Clear")
                        if examples:
                            gr.Examples(
                                examples=[[ex.image, ex.question, *ex.choice_boxes()] for ex in examples],
                                inputs=[image, question, *choice_boxes],
                                example_labels=[ex.label for ex in examples],
                                label="Examples (one per problem family; click to load)",
                                examples_per_page=12,
                            )
                    with gr.Column(scale=3, min_width=360):
                        status = gr.Markdown(elem_id="tt-status", elem_classes=["tt-pane"])
                        with gr.Accordion("Theorems retrieved from the bank", open=True):
                            theorems = gr.Markdown(latex_delimiters=render.LATEX_DELIMITERS, elem_id="tt-theorems",
                                                   max_height=480)
                        gr.Markdown("### Solution")
                        steps = gr.Markdown(latex_delimiters=render.LATEX_DELIMITERS, elem_id="tt-steps",
                                            elem_classes=["tt-pane"])
                        with gr.Row(visible=False) as hint_row:
                            next_btn = gr.Button("Next hint", elem_id="tt-next-hint")
                            full_btn = gr.Button("Show full solution", elem_id="tt-show-full")
                        answer = gr.Markdown(latex_delimiters=render.LATEX_DELIMITERS, elem_id="tt-answer")
                        with gr.Accordion("Rate this solution", open=False):
                            with gr.Row():
                                up_btn = gr.Button("✓ Helpful (thumbs up)", elem_id="tt-up")
                                down_btn = gr.Button("✗ Wrong or unclear (thumbs down)", elem_id="tt-down")
                            comment = gr.Textbox(label="Comment (optional)", lines=2, max_length=2000,
                                                 elem_id="tt-comment")
                            feedback_msg = gr.Markdown()

            with gr.Tab("Theorem bank", id="bank"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=300):
                        query = gr.Textbox(label="Search theorems", elem_id="tt-bank-query",
                                           placeholder="e.g. parallel lines angles, circle area, 勾股定理")
                        search_btn = gr.Button("Search", elem_id="tt-bank-search")
                        if isinstance(bank, Loading):
                            summary0, choices0 = render.notice(LOADING_BANK, "info"), []
                        else:
                            summary0, choices0 = handlers.search_bank(bank, "")
                        results_note = gr.Markdown(summary0)
                        results = gr.Radio(choices=choices0, label="Results", elem_id="tt-bank-results")
                    with gr.Column(scale=3, min_width=360):
                        detail = gr.Markdown(render.theorem_detail({}), latex_delimiters=render.LATEX_DELIMITERS,
                                             elem_id="tt-bank-detail")

            with gr.Tab("About", id="about"):
                about = gr.Markdown(render.notice(LOADING_ABOUT, "info") if still_loading
                                    else handlers.about(identity, bank), elem_id="tt-about")

        # ---- events: the solve is the only expensive one; it alone goes through the model's concurrency limit
        solve_inputs = [image, question, *choice_boxes, hint_mode, state, upload_flag]
        solve_outputs = [status, theorems, steps, answer, state]

        def run_solve(*args):
            yield from solve_when_ready(tutor, bank, *args)

        # "solve" is the one public endpoint (the load test and scripts call it); the rest are UI plumbing.
        solve_btn.click(run_solve, solve_inputs, solve_outputs, show_progress="minimal", api_name="solve",
                        concurrency_id="model", js=SOLVE_JS).then(None, None, None, js=SOLVED_JS, queue=False)
        question.submit(run_solve, solve_inputs, solve_outputs, show_progress="minimal", api_visibility="private",
                        concurrency_id="model", js=SOLVE_JS).then(None, None, None, js=SOLVED_JS, queue=False)

        # A new problem (typed, uploaded, or loaded from the gallery) clears the old solution off the page.
        def clear_results():
            return "", "", "", "", "", handlers.empty_state()

        for box in (image, question, *choice_boxes):
            box.change(clear_results, None, [status, theorems, steps, answer, feedback_msg, state], queue=False,
                       api_visibility="private", show_progress="hidden")
        image.upload(lambda: "", None, upload_flag, queue=False, api_visibility="private", show_progress="hidden")
        hint_mode.change(lambda on: gr.Row(visible=on), hint_mode, hint_row, queue=False, api_visibility="private")
        next_btn.click(lambda s: handlers.next_hint(ready(bank), s), state,
                       [status, steps, answer, state], concurrency_limit=None, api_visibility="private")
        full_btn.click(lambda s: handlers.show_full(ready(bank), s), state,
                       [status, steps, answer, state], concurrency_limit=None, api_visibility="private")
        clear_btn.add([image, question, *choice_boxes, status, theorems, steps, answer, comment, feedback_msg,
                       upload_flag])
        clear_btn.click(handlers.empty_state, None, state, queue=False, api_visibility="private")

        if store is not None:
            for btn, rating in ((up_btn, "up"), (down_btn, "down")):
                btn.click(lambda s, c, r=rating: handlers.send_feedback(store, s, r, c), [state, comment],
                          feedback_msg, concurrency_limit=None, api_visibility="private")
        else:
            for btn in (up_btn, down_btn):
                btn.click(lambda: render.notice("Feedback is switched off for this server.", "note"), None,
                          feedback_msg, queue=False, api_visibility="private")

        def run_search(text):
            note, found = handlers.search_bank(ready(bank), text)
            first = found[0][1] if found else None
            return note, gr.Radio(choices=found, value=first), handlers.theorem_detail(ready(bank), first)

        # The search shows its first result's detail itself, and only a student's pick (.input, not .change) asks
        # for another: a .change fired by the new choices could otherwise land after the pick and overwrite it.
        search_btn.click(run_search, query, [results_note, results, detail], concurrency_limit=None,
                         api_visibility="private")
        query.submit(run_search, query, [results_note, results, detail], concurrency_limit=None,
                     api_visibility="private")
        results.input(lambda tid: handlers.theorem_detail(ready(bank), tid), results, detail, concurrency_limit=None,
                      api_visibility="private")

        if still_loading:
            # Filled in on every page load: at once when everything is up, else as each part is ready.
            def failed(err: Exception) -> str:
                return render.notice(START_FAILED.format(err=err), "error")

            def fill_bank():
                try:
                    note, found = handlers.search_bank(ready(bank), "")
                except RuntimeError as err:  # the loader's own error
                    return failed(err), gr.skip()
                return note, gr.Radio(choices=found)

            def fill_about():
                try:
                    return handlers.about(ready(tutor).identity, ready(bank))
                except RuntimeError as err:
                    return failed(err)

            demo.load(fill_bank, None, [results_note, results], queue=False, api_visibility="private",
                      show_progress="hidden")
            demo.load(fill_about, None, about, queue=False, api_visibility="private", show_progress="hidden")
    return demo
