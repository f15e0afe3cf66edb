"""End to end against the app served on 127.0.0.1 in a subprocess (one server for both tests):

- in a real browser: Playwright drives Debian's Chromium to load an example, solve it (theorem cards, step cards,
  final answer), use Next hint, search the theorem bank; screenshots go to test-artifacts/;
- under load: 8 concurrent sessions (gradio_client, loopback) each get their solution or the busy answer of a
  full queue, none errors, and the app still answers afterwards.

The server is the real `app` stack with concurrency 1 and a queue of 3. Its model is the embedded demo model
when it is in the repo, otherwise a replay of each example's checked gold solution (a tiny random model writes
no steps, so it could not show step cards).
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


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 150.0) -> None:
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


def serve_replay(port: int) -> None:
    """Subprocess entry: the full app with a tutor that streams each example's gold solution."""
    import re

    from app import examples, feedback, ui
    from theorem_bank import open_bank

    solutions = {ex.question: ex.solution for ex in examples.load_gallery()}
    solutions[LATEX_QUESTION] = LATEX_SOLUTION

    class ReplayTutor:
        identity = {"model": "replay of the examples' gold solutions (browser test)", "adapter": None,
                    "backend": "test", "device": "cpu", "demo": False}

        def stream(self, question, choices=None, image=None, theorems=()):
            text = solutions.get(question, "I have no solution for this question.")
            for piece in re.findall(r"\S+\s*|\n", text):
                time.sleep(0.01)  # a visible stream, like a model
                yield piece

    from app.handlers import warm_up

    bank, gallery = open_bank(dense=False), examples.load_gallery()
    warm_up(bank, gallery[0].solution)
    blocks = ui.build_ui(ReplayTutor(), bank, feedback.FeedbackStore(), gallery)
    blocks.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    blocks.launch(server_name="127.0.0.1", server_port=port, theme=ui.theme(), css=ui.APP_CSS, footer_links=[],
                  ssr_mode=False, allowed_paths=[str(examples.EXAMPLES_DIR)], quiet=True,
                  max_file_size=UPLOAD_LIMIT_MB * 1024 * 1024)


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
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
           "THEOREM_TUTOR_FEEDBACK_DB": str(log.parent / "feedback.sqlite")}
    demo = (DEMO_MODEL_DIR / "config.json").is_file()
    if demo:
        cmd = [sys.executable, "-m", "app", "--port", str(port), "--retrieval", "bm25", "--max-new-tokens", "256",
               "--concurrency", "1", "--max-queue", str(MAX_QUEUE), "--max-upload-mb", str(UPLOAD_LIMIT_MB)]
    else:
        cmd = [sys.executable, "-c", f"import sys; sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]; "
                                     f"from test_browser_app import serve_replay; serve_replay({port})"]
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
    assert "Answer:" in answer
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
    if n_steps > 1:
        page.wait_for_function("() => !document.querySelector('#tt-status').innerText.includes('+')", timeout=60_000)
        page.click("#tt-next-hint")
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
        job = client.submit(handle_file(image), question, "", "", "", "", False, api_name="/solve")
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
