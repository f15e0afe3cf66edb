"""End to end against the app served on 127.0.0.1 in a subprocess:

- in a real browser: Playwright drives Debian's Chromium to load an example, solve it (theorem cards, step cards,
  final answer), use Next hint, search the theorem bank; screenshots go to test-artifacts/;
- under load: 8 concurrent sessions (gradio_client, loopback) each get their solution or the busy answer of a
  full queue, none errors, and the app still answers afterwards.

The server is the real `app` stack with concurrency 1 and a queue of 3. Its model is the embedded demo model
when it is in the repo, otherwise a replay of each example's checked gold solution (a tiny random model writes
no steps, so it could not show step cards).

A second server always replays scripted chains (gold, a wrong Answer letter, an ungrounded chain, samples that
disagree), so the truth of the answer box is tested on known text: the letter shown is always the choice equal to
the trusted value, a stale result disappears when a new problem loads, the phone layout shows progress and scrolls
to the answer, an ungrounded chain is never green, a refused upload blocks Solve, and every text has contrast
>= 4.5:1. Screenshots at 1280x800 and 390x844 go to test-artifacts/.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-gpu"]
EXAMPLE_FAMILY = "parallel_corresponding"
SESSIONS = 8
MAX_QUEUE = 3
UPLOAD_LIMIT_MB = 2
LATEX_QUESTION = "Show the four kinds of mathematics."
LATEX_SOLUTION = ("Theorem: pythagorean_theorem | Pythagorean theorem\n"
                  "Cond: $\\angle C = 90^\\circ$ in △ABC, and \\(AC \\perp BC\\)\n"
                  "Map: leg1 = AC = 3; leg2 = BC = 4; hypotenuse = AB\n"
                  "Exec: $$a^2 + b^2 = c^2$$ so \\[\\sqrt{3^2 + 4^2} = 5\\] => AB = 5\n"
                  "Answer: 5\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"app did not serve {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


PARALLEL_QUESTION = "AB ∥ CD, EF crosses them at G and H, ∠EGB = 50°. Find ∠GHC."
PARALLEL_CHOICES = ["50°", "130°", "40°", "140°"]
PARALLEL_GOLD = (
    "Theorem: parallel_corresponding_angles | Corresponding angles of parallel lines\n"
    "Cond: AB ∥ CD; EF crosses AB at G and CD at H\n"
    "Map: angle1 = ∠EGB = 50°; angle2 = ∠GHD\n"
    "Exec: angle2 = angle1 => ∠GHD = 50°\n"
    "Theorem: linear_pair | Angles forming a straight line\n"
    "Cond: ∠GHD and ∠GHC lie on line CD with common side GH\n"
    "Map: angle1 = ∠GHD = 50°; angle2 = ∠GHC\n"
    "Exec: angle1 + angle2 = 180° => ∠GHC = 130°\n"
    "Answer: 130° (B)\n"
)
# The chain executes to 130° (choice B); the model's own Answer line says D.
WRONG_LETTER_QUESTION = "Lines AB ∥ CD are cut by EF at G and H, and ∠EGB = 50°. What is ∠GHC?"
# Arithmetic that holds on points (I, M, O) and a given (40°) this problem does not have.
UNGROUNDED_QUESTION = "In the figure AB ∥ CD, EF meets them at G and H, ∠EGB = 50°. Find ∠GHC."
UNGROUNDED = ("Theorem: vertical_angles | Vertical angles\nCond: AB and IM cross at O\n"
              "Map: angle1 = ∠AOI = 40°; angle2 = ∠BOM\nExec: angle2 = angle1 => ∠BOM = 40°\nAnswer: 40° (C)\n")
# The streamed chain is the ungrounded one; two sampled chains are the gold one: the page shows the gold.
SAMPLES_QUESTION = "AB ∥ CD; a transversal EF crosses them at G and H; ∠EGB = 50°. Find ∠GHC."
UPLOAD_TOO_BIG_QUESTION = PARALLEL_QUESTION


def serve_replay(port: int) -> None:
    """Subprocess entry: the full app with a tutor that streams each example's gold solution and the scripted
    chains above."""
    import re

    from app import examples, feedback, ui
    from theorem_bank import open_bank

    solutions = {ex.question: ex.solution for ex in examples.load_gallery()}
    solutions[LATEX_QUESTION] = LATEX_SOLUTION
    solutions[PARALLEL_QUESTION] = PARALLEL_GOLD
    solutions[WRONG_LETTER_QUESTION] = PARALLEL_GOLD.replace("Answer: 130° (B)", "Answer: 140° (D)")
    solutions[UNGROUNDED_QUESTION] = UNGROUNDED
    solutions[SAMPLES_QUESTION] = UNGROUNDED
    samples = {SAMPLES_QUESTION: [PARALLEL_GOLD, PARALLEL_GOLD]}

    class ReplayTutor:
        identity = {"model": "replay of the examples' gold solutions (browser test)", "adapter": None,
                    "backend": "test", "device": "cpu", "demo": False}
        num_samples = 3

        def stream(self, question, choices=None, image=None, theorems=()):
            text = solutions.get(question, "I have no solution for this question.")
            for piece in re.findall(r"\S+\s*|\n", text):
                time.sleep(0.01)  # a visible stream, like a model
                yield piece

        def sample(self, question, choices=None, image=None, theorems=(), n=1):
            time.sleep(0.3)  # a visible "checking more solutions" state
            return samples.get(question, [solutions.get(question, "")] * n)[:n]

    from app.handlers import warm_up

    bank, gallery = open_bank(dense=False), examples.load_gallery()
    warm_up(bank, gallery[0].solution)
    blocks = ui.build_ui(ReplayTutor(), bank, feedback.FeedbackStore(), gallery)
    blocks.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    blocks.launch(server_name="127.0.0.1", server_port=port, theme=ui.theme(), css=ui.APP_CSS, footer_links=[],
                  ssr_mode=False, allowed_paths=[str(examples.EXAMPLES_DIR)], quiet=True,
                  max_file_size=UPLOAD_LIMIT_MB * 1024 * 1024, head=ui.head(UPLOAD_LIMIT_MB * 1024 * 1024))


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it (Debian: apt-get install chromium) or set CHROMIUM")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from app.serving import DEMO_MODEL_DIR

    port = free_port()
    log = tmp_path_factory.mktemp("browser") / "server.log"
    demo = (DEMO_MODEL_DIR / "config.json").is_file()
    if demo:
        cmd = [sys.executable, "-m", "app", "--port", str(port), "--retrieval", "bm25", "--max-new-tokens", "256",
               "--concurrency", "1", "--max-queue", str(MAX_QUEUE), "--max-upload-mb", str(UPLOAD_LIMIT_MB),
               "--samples", "2"]
    else:
        cmd = replay_command(port)
    yield from run_server(cmd, port, log, demo)


def replay_command(port: int) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]; "
                                  f"from test_browser_app import serve_replay; serve_replay({port})"]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """The app replaying the scripted chains (whatever model the repo ships)."""
    port = free_port()
    log = tmp_path_factory.mktemp("replay") / "server.log"
    yield from run_server(replay_command(port), port, log, demo=False)


def run_server(cmd, port, log, demo):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
           "THEOREM_TUTOR_FEEDBACK_DB": str(log.parent / "feedback.sqlite")}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, proc, log)
        yield {"url": url, "demo": demo, "log": log, "proc": proc, "feedback_db": env["THEOREM_TUTOR_FEEDBACK_DB"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.browser
def test_solve_hint_and_bank_in_chromium(browser, served):
    from app.examples import load_gallery

    example = next(ex for ex in load_gallery() if ex.family == EXAMPLE_FAMILY)
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1360, "height": 1000})
    outside = []  # the tutor must work offline: no request may leave the machine
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.goto(served["url"])

    # load an example from the gallery (one click fills diagram, question and choices)
    page.get_by_text(example.label, exact=True).first.click()
    page.wait_for_function("q => document.querySelector('#tt-question textarea').value === q", arg=example.question)
    assert page.locator("#tt-image img").count() >= 1

    page.click("#tt-solve-btn")
    page.wait_for_selector("#tt-theorems .tt-theorem", timeout=60_000)
    page.wait_for_selector("#tt-steps .tt-step", timeout=60_000)
    page.wait_for_selector("#tt-answer .tt-answer", timeout=90_000)
    answer = page.inner_text("#tt-answer")
    assert "answer:" in answer
    n_steps = page.locator("#tt-steps .tt-step").count()
    assert n_steps >= 1
    if not served["demo"]:  # the replayed gold solution: exact answer, every step verified by the checker
        assert example.answer in answer and f"choice {example.answer_letter}" in answer
        assert n_steps == example.solution.count("Theorem:")
        assert page.locator("#tt-steps .tt-badge.tt-pending").count() == 0  # every step got its check
        not_ok = page.locator("#tt-steps .tt-step:not(.tt-ok)")
        for i in range(not_ok.count()):  # the gold steps verify, unless a starved CPU ran out the checker's clock
            assert "took too long" in not_ok.nth(i).inner_text(), not_ok.nth(i).inner_text()
    assert "∥" in page.inner_text("#tt-steps") or "∠" in page.inner_text("#tt-steps")
    page.screenshot(path=str(ARTIFACTS / "solve.png"), full_page=True)

    # hint mode: one step, then Next hint adds the next while the first stays
    page.locator("#tt-hint-mode input").check()
    page.click("#tt-solve-btn")
    page.wait_for_selector("#tt-next-hint", state="visible")
    page.wait_for_function("() => document.querySelector('#tt-status').innerText.includes('Hint 1 of')",
                           timeout=60_000)
    assert page.locator("#tt-steps .tt-step").count() == 1
    # the solve is done (every sample written and the chain chosen) before the hints are walked
    page.wait_for_function("() => !document.body.classList.contains('tt-busy')", timeout=90_000)
    if n_steps > 1:
        page.wait_for_function("() => !document.querySelector('#tt-status').innerText.includes('+')", timeout=60_000)
        for _ in range(3):  # which theorem, then the binding, then the relation: then the next step starts
            page.click("#tt-next-hint")
            time.sleep(0.3)
        page.wait_for_function("() => document.querySelectorAll('#tt-steps .tt-step').length === 2", timeout=20_000)
        assert "Step 1:" in page.inner_text("#tt-steps")
    page.click("#tt-show-full")
    page.wait_for_function(f"() => document.querySelectorAll('#tt-steps .tt-step').length === {n_steps}",
                           timeout=20_000)
    page.wait_for_selector("#tt-answer .tt-answer", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "hint.png"), full_page=True)

    # feedback: a thumbs-down with a comment lands in the SQLite store with the problem and the output
    page.get_by_text("Rate this solution").click()
    page.locator("#tt-comment textarea").fill("step 2 needs a picture")
    page.click("#tt-down")
    page.wait_for_function("() => document.body.innerText.includes('thumbs-down is saved')", timeout=20_000)
    import sqlite3

    with sqlite3.connect(served["feedback_db"]) as db:
        rating, comment, question, output = db.execute(
            "SELECT rating, comment, question, output FROM feedback ORDER BY id DESC").fetchone()
    assert (rating, comment, question) == ("down", "step 2 needs a picture", example.question) and "Theorem:" in output

    if not served["demo"]:  # mathematics in all four delimiters renders through KaTeX
        page.locator("#tt-hint-mode input").uncheck()
        page.locator("#tt-question textarea").fill(LATEX_QUESTION)
        page.click("#tt-solve-btn")
        page.wait_for_function("() => document.querySelectorAll('#tt-steps .katex').length >= 4", timeout=30_000)
        assert page.locator("#tt-steps .katex-display").count() >= 2  # $$...$$ and \\[...\\] are display maths
        page.screenshot(path=str(ARTIFACTS / "latex.png"), full_page=False)

    # theorem bank: search, pick a result, read its detail
    page.get_by_role("tab", name="Theorem bank").click()
    page.locator("#tt-bank-query input, #tt-bank-query textarea").first.fill("vertical angles")
    page.click("#tt-bank-search")
    page.wait_for_function("() => document.querySelector('#tt-bank-results').innerText.includes('Vertical angles')",
                           timeout=20_000)
    assert page.locator("#tt-bank-results label", has_text="Vertical angles").count() == 1  # each theorem once
    page.locator("#tt-bank-results label", has_text="Vertical angles").first.click()
    # the first detail view may wait for the bank's first query on a loaded machine
    page.wait_for_function("() => document.querySelector('#tt-bank-detail').innerText.includes('vertical_angles')",
                           timeout=60_000)
    detail = page.inner_text("#tt-bank-detail")
    assert "vertical_angles" in detail and "angle1" in detail and "Example" in detail
    page.screenshot(path=str(ARTIFACTS / "bank.png"), full_page=True)

    page.get_by_role("tab", name="About").click()
    page.wait_for_selector("#tt-about", state="visible")
    assert "What is serving" in page.inner_text("#tt-about")
    page.screenshot(path=str(ARTIFACTS / "about.png"), full_page=True)
    page.close()
    assert outside == [], f"the page tried to reach the network: {outside[:5]}"


def test_upload_above_the_limit_is_refused(served):
    import httpx

    too_big = b"\x89PNG" + b"\0" * (UPLOAD_LIMIT_MB * 1024 * 1024 + 10)
    response = httpx.post(served["url"] + "gradio_api/upload", files={"files": ("big.png", too_big, "image/png")},
                          timeout=30)
    assert response.status_code == 413, response.text[:300]
    small = httpx.post(served["url"] + "gradio_api/upload", files={"files": ("ok.png", b"\x89PNG", "image/png")},
                       timeout=30)
    assert small.status_code == 200


def one_session(url: str, image: str, question: str) -> tuple[str, str]:
    """("done", final status html) or ("busy", message); any other outcome is ("error", what happened)."""
    from gradio_client import Client, handle_file
    from gradio_client.utils import QueueError

    try:
        client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        job = client.submit(handle_file(image), question, "", "", "", "", False, "", api_name="/solve")
        return "done", job.result(timeout=90)[0]
    except QueueError as err:
        return "busy", str(err)
    except Exception as err:  # noqa: BLE001 -- every other outcome is a failure the test reports
        return "error", f"{type(err).__name__}: {err}"


def test_eight_concurrent_sessions_complete_or_get_busy(served):
    from concurrent.futures import ThreadPoolExecutor

    from app.examples import load_gallery

    example = load_gallery()[0]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        outcomes = list(pool.map(lambda _: one_session(served["url"], example.image, example.question),
                                 range(SESSIONS)))
    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert not errors, f"{errors}\n--- server log ---\n{served['log'].read_text()[-3000:]}"
    kinds = [kind for kind, _ in outcomes]
    print(f"load: {kinds.count('done')} done, {kinds.count('busy')} busy of {SESSIONS} in {time.monotonic() - start:.1f} s")
    assert kinds.count("done") >= 1
    for kind, detail in outcomes:
        if kind == "done":
            assert "Done" in detail and "tt-error" not in detail
        else:
            assert "Queue is full" in detail and "try again" in detail
    assert time.monotonic() - start < 120  # bounded: a stuck queue fails here instead of hanging CI

    kind, detail = one_session(served["url"], example.image, example.question)  # still serving afterwards
    assert kind == "done" and "Done" in detail
    assert served["proc"].poll() is None


# ------------------------------------------------------------------------------------------- the truthful page
CONTRAST_JS = """(root) => {
  // WCAG contrast of every visible text node under root against the first opaque background behind it.
  function rgb(s) { const m = s.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; }
  function lum(c) { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); }
  function background(el) { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; }
  const low = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || !node.textContent.trim()) continue;
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || box.width === 0 || box.height === 0) continue;
    if (el.closest('.katex-mathml')) continue;  // KaTeX's hidden MathML copy for screen readers
    const fg = rgb(style.color), bg = background(el);
    if (!fg) continue;
    const a = fg.a, mix = {r: fg.r * a + bg.r * (1 - a), g: fg.g * a + bg.g * (1 - a), b: fg.b * a + bg.b * (1 - a)};
    const l1 = lum(mix), l2 = lum(bg), ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < 4.5) low.push(`${ratio.toFixed(2)}: ${node.textContent.trim().slice(0, 40)} [${el.className}]`);
  }
  return low;
}"""


def _new_page(browser, width, height):
    return browser.new_page(viewport={"width": width, "height": height})


def _solve(page, question, choices=("", "", "", ""), wait_answer=True):
    page.locator("#tt-question textarea").fill(question)
    for letter, value in zip("ABCD", choices):
        page.locator(f"#tt-choice-{letter} textarea, #tt-choice-{letter} input").first.fill(value)
    page.click("#tt-solve-btn")
    if wait_answer:
        page.wait_for_selector("#tt-answer .tt-answer", timeout=60_000)
        page.wait_for_function("() => !document.body.classList.contains('tt-busy')", timeout=30_000)


def _shown_value_and_choice(page) -> tuple[str, str | None, str | None]:
    box = page.locator("#tt-answer .tt-answer").first
    value = box.locator(".tt-answer-value").inner_text()
    letters = box.locator(".tt-choice")
    letter = letters.first.inner_text() if letters.count() else None
    text = box.inner_text()
    choice = None
    if letter:
        import re

        m = re.search(rf"choice {letter} \(([^)]*)\)", text)
        choice = m.group(1) if m else None
    return value, letter, choice


@pytest.mark.browser
def test_answer_box_letter_is_always_the_choice_equal_to_the_shown_value(browser, replayed):
    from app.examples import load_gallery
    from model.selection import same_value

    page = _new_page(browser, 1280, 800)
    page.goto(replayed["url"])
    page.wait_for_selector("#tt-question textarea")
    # the model's own line says D; the chain executes to 130°, choice B
    _solve(page, WRONG_LETTER_QUESTION, PARALLEL_CHOICES)
    value, letter, choice = _shown_value_and_choice(page)
    assert (value, letter, choice) == ("130°", "B", "130°")
    assert "The model's own Answer line said “140° (D)”" in page.inner_text("#tt-answer")
    # gallery examples, loaded as a student would: a letter only ever names the choice equal to the value
    for example in load_gallery()[:6]:
        page.get_by_text(example.label, exact=True).first.click()
        page.wait_for_function("q => document.querySelector('#tt-question textarea').value === q", arg=example.question)
        page.click("#tt-solve-btn")
        page.wait_for_selector("#tt-answer .tt-answer", timeout=60_000)
        value, letter, choice = _shown_value_and_choice(page)
        if letter is not None:
            assert same_value(value.replace("$", ""), choice), (example.family, value, letter, choice)
        else:
            assert "none of the choices equals this value" in page.inner_text("#tt-answer")
    page.close()


@pytest.mark.browser
def test_a_stale_result_disappears_when_a_new_problem_loads(browser, replayed):
    from app.examples import load_gallery

    first, second = load_gallery()[:2]
    page = _new_page(browser, 1280, 800)
    page.goto(replayed["url"])
    page.get_by_text(first.label, exact=True).first.click()
    page.wait_for_function("q => document.querySelector('#tt-question textarea').value === q", arg=first.question)
    page.click("#tt-solve-btn")
    page.wait_for_selector("#tt-answer .tt-answer", timeout=60_000)
    page.get_by_text(second.label, exact=True).first.click()  # a new example: the old solution must go
    page.wait_for_function("q => document.querySelector('#tt-question textarea').value === q", arg=second.question)
    page.wait_for_function("() => !document.querySelector('#tt-answer .tt-answer') && "
                           "!document.querySelector('#tt-steps .tt-step')", timeout=10_000)
    page.click("#tt-solve-btn")  # and typing a new question does the same
    page.wait_for_selector("#tt-answer .tt-answer", timeout=60_000)
    page.locator("#tt-question textarea").fill(second.question + " ")
    page.wait_for_function("() => !document.querySelector('#tt-answer .tt-answer')", timeout=10_000)
    page.close()


@pytest.mark.browser
def test_phone_layout_shows_progress_then_scrolls_to_the_answer(browser, replayed):
    ARTIFACTS.mkdir(exist_ok=True)
    page = _new_page(browser, 390, 844)
    page.goto(replayed["url"])
    page.wait_for_selector("#tt-question textarea")
    _solve(page, SAMPLES_QUESTION, PARALLEL_CHOICES, wait_answer=False)
    # at once: a busy bar fixed on screen, and the status pane scrolled into view
    page.wait_for_selector("#tt-busy-bar", state="visible", timeout=5_000)
    bar = page.locator("#tt-busy-bar").bounding_box()
    assert bar and 0 <= bar["y"] < 844 and bar["height"] > 10
    page.wait_for_function("() => { const r = document.querySelector('#tt-status').getBoundingClientRect(); "
                           "return r.top < 844 && r.bottom > 0 && document.querySelector('#tt-status').innerText.trim(); }",
                           timeout=20_000)
    page.wait_for_selector("#tt-answer .tt-answer", timeout=60_000)
    page.wait_for_function("() => !document.body.classList.contains('tt-busy')", timeout=30_000)
    page.wait_for_function("() => { const r = document.querySelector('#tt-answer').getBoundingClientRect(); "
                           "return r.top < 844 && r.bottom > 0; }", timeout=10_000)
    answer = page.inner_text("#tt-answer")
    assert "2 of 3 solutions agree" in answer and "See the other 2 solutions" in answer
    page.screenshot(path=str(ARTIFACTS / "phone-390x844.png"), full_page=False)
    page.close()


@pytest.mark.browser
def test_an_ungrounded_chain_is_never_green(browser, replayed):
    page = _new_page(browser, 1280, 800)
    page.goto(replayed["url"])
    page.wait_for_selector("#tt-question textarea")
    _solve(page, UNGROUNDED_QUESTION, PARALLEL_CHOICES)
    steps = page.inner_text("#tt-steps")
    assert "arithmetic right, not grounded" in steps and "✓ verified" not in steps
    box = page.locator("#tt-answer .tt-answer").first
    assert "tt-conf-low" in (box.get_attribute("class") or "")
    border = box.evaluate("e => getComputedStyle(e).borderTopColor")
    background = box.evaluate("e => getComputedStyle(e).backgroundColor")
    for colour in (border, background):
        r, g, b = [int(float(v)) for v in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]]
        assert not (g > r + 30 and g > b + 30), f"green in an ungrounded answer box: {colour}"
    assert "Not checked" in box.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ungrounded-1280x800.png"), full_page=False)
    page.close()


@pytest.mark.browser
def test_a_refused_upload_blocks_solve_with_a_message(browser, replayed, tmp_path):
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (UPLOAD_LIMIT_MB * 1024 * 1024 + 1000))
    page = _new_page(browser, 1280, 800)
    page.goto(replayed["url"])
    page.wait_for_selector("#tt-question textarea")
    page.locator("#tt-image input[type=file]").set_input_files(str(big))
    page.wait_for_function("() => document.querySelector('#tt-upload-flag textarea, #tt-upload-flag input')"
                           ".value.startsWith('huge.png|')", timeout=10_000)
    _solve(page, UPLOAD_TOO_BIG_QUESTION, PARALLEL_CHOICES, wait_answer=False)
    page.wait_for_function("() => document.querySelector('#tt-status').innerText.includes('was not accepted')",
                           timeout=30_000)
    assert page.locator("#tt-steps .tt-step").count() == 0
    page.close()


@pytest.mark.browser
def test_every_text_has_contrast_and_screenshots_at_both_viewports(browser, replayed):
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((1280, 800), (390, 844)):
        page = _new_page(browser, width, height)
        page.goto(replayed["url"])
        page.wait_for_selector("#tt-question textarea")
        if width == 1280:  # the Solve button is above the fold on a laptop screen
            solve_box = page.locator("#tt-solve-btn").bounding_box()
            assert solve_box and solve_box["y"] + solve_box["height"] <= height, solve_box
        _solve(page, SAMPLES_QUESTION, PARALLEL_CHOICES)
        page.locator("#tt-answer details.tt-alts summary").first.click()
        low = page.evaluate(CONTRAST_JS, page.locator("body").element_handle())
        assert not low, f"text below 4.5:1 at {width}x{height}: {low[:8]}"
        page.screenshot(path=str(ARTIFACTS / f"solve-{width}x{height}.png"), full_page=True)
        page.close()
