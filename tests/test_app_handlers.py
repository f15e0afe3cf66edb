"""The tutor's handlers on the tiny model: bad input, faults mid-stream, streaming order, hints, feedback, bank tab."""
from __future__ import annotations

import json
import re
import struct
import zlib

import pytest
from PIL import Image

from app import feedback, handlers, serving

GOLD = (
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
CHOICES = ("50°", "130°", "40°", "140°")
QUESTION = "AB ∥ CD, EF crosses them at G and H, ∠EGB = 50°. Find ∠GHC."


class ScriptedTutor:
    """Replays fixed text in small pieces, like a model streaming it; optionally dies after `fail_after` pieces."""

    identity = {"model": "scripted", "adapter": None, "backend": "test", "device": "cpu", "demo": False}

    def __init__(self, text: str, fail_after: int | None = None):
        self.text, self.fail_after, self.calls = text, fail_after, []

    def stream(self, question, choices=None, image=None, bank=None):
        self.calls.append({"question": question, "choices": choices, "image": image, "bank": bank})
        for i, piece in enumerate(re.findall(r"\S+\s*|\n", self.text)):
            if self.fail_after is not None and i == self.fail_after:
                raise ConnectionError("backend went away (test)")
            yield piece


@pytest.fixture(scope="module")
def bank():
    from theorem_bank import open_bank

    return open_bank(dense=False)  # BM25 only: loading the sentence encoder costs a minute on a busy CPU


@pytest.fixture(scope="module")
def tiny_tutor(tiny_model_dir):
    return serving.open_tutor(serving.ServingConfig(model=str(tiny_model_dir), device="cpu", max_new_tokens=24))


@pytest.fixture
def diagram(tmp_path):
    path = tmp_path / "diagram.png"
    image = Image.new("RGB", (240, 160), "white")
    image.putpixel((10, 10), (0, 0, 0))
    image.save(path)
    return str(path)


def run(tutor, bank, image=None, question="", choices=("", "", "", ""), hint=False):
    return list(handlers.solve(tutor, bank, image, question, *choices, hint, None))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with a tiny (invalid) body: what a decompression bomb looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


# ------------------------------------------------------------------------------------------------ bad input
def test_no_image_and_no_question_asks_for_a_problem(bank):
    tutor = ScriptedTutor(GOLD)
    views = run(tutor, bank)
    assert len(views) == 1 and "tt-error" in views[0].status
    assert "upload" in views[0].status and "question" in views[0].status
    assert tutor.calls == []  # the model is never called


def test_image_without_question_asks_for_the_question(bank, diagram):
    tutor = ScriptedTutor(GOLD)
    views = run(tutor, bank, image=diagram, question="   ")
    assert "type the question" in views[-1].status and tutor.calls == []


@pytest.mark.parametrize("content, expected", [
    (b"%PDF-1.4 not an image at all", "not an image"),
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x02", "diagram could not be used"),
])
def test_non_image_or_corrupt_upload_is_explained(bank, tmp_path, content, expected):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    tutor = ScriptedTutor(GOLD)
    views = run(tutor, bank, image=str(path), question=QUESTION)
    assert "tt-error" in views[-1].status and expected in views[-1].status
    assert str(tmp_path) not in views[-1].status  # the temp path means nothing to a student
    assert tutor.calls == []


def test_truncated_png_is_explained(bank, tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (300, 300), "white").save(good)
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:-40])
    views = run(ScriptedTutor(GOLD), bank, image=str(broken), question=QUESTION)
    assert "tt-error" in views[-1].status and "diagram could not be used" in views[-1].status


def test_20000_by_20000_image_is_refused_before_decoding(bank, tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(20000, 20000))
    views = run(ScriptedTutor(GOLD), bank, image=str(path), question=QUESTION)
    assert "tt-error" in views[-1].status and re.search(r"20000x20000|400000000 pixels", views[-1].status)


def test_50_kb_question_is_refused_with_its_length(bank):
    tutor = ScriptedTutor(GOLD)
    views = run(tutor, bank, question="Find ∠ABC. " * 5000)
    assert "tt-error" in views[-1].status and "54,999 characters" in views[-1].status and tutor.calls == []


def test_choice_gap_is_refused(bank):
    views = run(ScriptedTutor(GOLD), bank, question=QUESTION, choices=("1", "", "3", ""))
    assert "Choice B is empty" in views[-1].status


def test_rgba_image_reaches_the_model_as_rgb(bank, tmp_path):
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (120, 90), (0, 0, 0, 0)).save(path)
    tutor = ScriptedTutor(GOLD)
    run(tutor, bank, image=str(path), question=QUESTION)
    assert tutor.calls[0]["image"].mode == "RGB" and tutor.calls[0]["image"].getpixel((5, 5)) == (255, 255, 255)


# ------------------------------------------------------------------------------------------------ streaming
def test_stream_shows_theorems_first_then_steps_then_answer(bank, diagram):
    tutor = ScriptedTutor(GOLD)
    views = run(tutor, bank, image=diagram, question=QUESTION, choices=CHOICES)
    first = views[0]
    assert "tt-theorem" in first.theorems and first.steps == "" and first.answer == ""
    # the model's own prompt retrieves from the same bank, as its serving profile says (model.prompting)
    assert tutor.calls[0]["bank"] is bank
    # some intermediate view holds exactly one step card and no answer yet
    partial = [v for v in views[1:-1] if v.steps.count('class="tt-card tt-step') == 1]
    assert partial and all(v.answer == "" for v in partial)
    final = views[-1]
    assert final.steps.count('class="tt-card tt-step') == 2
    assert final.steps.count("✓ verified") == 2
    assert "130°" in final.answer and 'class="tt-choice">B<' in final.answer
    assert final.state["done"] and final.state["output"] == GOLD
    assert final.state["problem"]["choices"] == list(CHOICES)


def test_wrong_step_shows_the_correct_value(bank):
    wrong = GOLD.replace("=> ∠GHC = 130°", "=> ∠GHC = 120°").replace("Answer: 130° (B)", "Answer: 120°")
    final = run(ScriptedTutor(wrong), bank, question=QUESTION)[-1]
    assert "✗ wrong" in final.steps and "the relation gives 130" in final.steps


def test_unknown_theorem_is_unverifiable_with_reason(bank):
    text = "Theorem: made_up_rule | Made up\nCond: x\nMap: a = ∠EGB = 50°\nExec: a = 50 => ∠EGB = 50°\nAnswer: 50°\n"
    final = run(ScriptedTutor(text), bank, question=QUESTION)[-1]
    assert "? not checked" in final.steps or "✓ verified" in final.steps
    assert "made_up_rule" in final.steps


def test_model_text_is_escaped(bank):
    text = GOLD.replace("Cond: AB ∥ CD", "Cond: <img src=x onerror=alert(1)> AB ∥ CD")
    final = run(ScriptedTutor(text), bank, question=QUESTION)[-1]
    assert "<img" not in final.steps and "&lt;img src=x" in final.steps


def test_text_without_steps_is_shown_plainly_with_a_note(bank):
    final = run(ScriptedTutor("I think the angle is probably 130 degrees."), bank, question=QUESTION)[-1]
    assert "without any theorem steps" in final.steps and "probably 130 degrees" in final.steps
    assert "tt-step" not in final.steps


def test_tiny_model_output_without_steps_is_shown_plainly(bank, tiny_tutor, diagram):
    views = run(tiny_tutor, bank, image=diagram, question=QUESTION, choices=CHOICES)
    final = views[-1]
    assert final.state["done"] and final.state["output"]
    assert "without any theorem steps" in final.steps and "tt-plain" in final.steps
    assert final.state["model"]["model"] == tiny_tutor.identity["model"]


def test_backend_error_mid_stream_is_reported_and_next_request_works(bank, tiny_tutor, diagram):
    class DiesAfterThree:
        profile = tiny_tutor.profile

        def stream(self, messages, options=None):
            for i, piece in enumerate(tiny_tutor.backend.stream(messages, options)):
                if i == 3:
                    raise ConnectionResetError("vLLM server closed the connection")
                yield piece

    broken = serving.Tutor(DiesAfterThree(), tiny_tutor.identity)
    final = run(broken, bank, image=diagram, question=QUESTION)[-1]
    assert "tt-error" in final.status and "ConnectionResetError" in final.status
    assert "Press Solve to try again" in final.status
    assert final.state["output"]  # what arrived before the error is kept and shown
    again = run(tiny_tutor, bank, image=diagram, question=QUESTION)[-1]
    assert "tt-error" not in again.status and again.state["done"]


def test_scripted_error_keeps_the_steps_already_written(bank):
    final = run(ScriptedTutor(GOLD, fail_after=30), bank, question=QUESTION)[-1]
    assert "ConnectionError" in final.status and "tt-step" in final.steps


# ------------------------------------------------------------------------------------------------ hints
def test_hint_mode_reveals_theorem_then_binding_then_relation(bank):
    final = run(ScriptedTutor(GOLD), bank, question=QUESTION, choices=CHOICES, hint=True)[-1]
    # stage 1: which theorem, nothing of its binding or value
    assert final.steps.count('class="tt-card tt-step') == 1 and final.answer == ""
    assert "Corresponding angles" in final.steps and "Map" not in final.steps and "50°" not in final.steps
    assert "Next hint" in final.steps
    status, steps, answer, state = handlers.next_hint(bank, final.state)  # stage 2: the binding
    assert ">Map<" in steps and "∠EGB = 50°" in steps and ">Exec<" not in steps and answer == ""
    status, steps, answer, state = handlers.next_hint(bank, state)  # stage 3: the relation and its check
    assert ">Exec<" in steps and "✓ verified" in steps and answer == ""
    status, steps, answer, state = handlers.next_hint(bank, state)  # step 2, stage 1
    assert steps.count('class="tt-card tt-step') == 2 and "Step 1:" in steps and "130°" not in steps
    for _ in range(2):
        status, steps, answer, state = handlers.next_hint(bank, state)
    assert "130°" in steps and "130°" in answer  # every step in full: the answer follows
    status, steps, answer, state = handlers.next_hint(bank, state)
    assert steps.count('class="tt-card tt-step') == 2


def test_show_full_solution_after_a_hint(bank):
    final = run(ScriptedTutor(GOLD), bank, question=QUESTION, hint=True)[-1]
    status, steps, answer, state = handlers.show_full(bank, final.state)
    assert steps.count('class="tt-card tt-step') == 2 and "130°" in answer


def test_hint_before_any_solve_says_what_to_do(bank):
    status, steps, answer, state = handlers.next_hint(bank, handlers.empty_state())
    assert "Solve a problem first" in status and steps == ""


# ------------------------------------------------------------------------------------------------ feedback
def test_feedback_is_stored_with_problem_output_and_model(bank, diagram, tmp_path):
    store = feedback.FeedbackStore(tmp_path / "fb.sqlite")
    final = run(ScriptedTutor(GOLD), bank, image=diagram, question=QUESTION, choices=CHOICES)[-1]
    message = handlers.send_feedback(store, final.state, "down", "step 2 is unclear")
    assert "saved" in message
    row = next(store.rows())
    assert row["rating"] == "down" and row["comment"] == "step 2 is unclear"
    assert row["question"] == QUESTION and json.loads(row["choices"]) == list(CHOICES)
    assert row["output"] == GOLD and json.loads(row["model"])["model"] == "scripted"
    assert row["image"][:4] == b"\x89PNG" and len(row["image_sha256"]) == 64
    assert "130" in row["answer"]

    out = tmp_path / "export" / "fb.jsonl"
    assert feedback.main(["export", "--db", str(tmp_path / "fb.sqlite"), "-o", str(out)]) == 0
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert exported[0]["model"]["model"] == "scripted" and exported[0]["choices"] == list(CHOICES)
    assert (out.parent / exported[0]["image"]).read_bytes() == row["image"]


def test_feedback_export_never_names_a_partial_diagram(diagram, tmp_path, capsys):
    # Issue 16.9: an export killed mid-write left a partial diagram file, and the next export named it as it was.
    store = feedback.FeedbackStore(tmp_path / "fb.sqlite")
    store.add("up", {"question": "Find x.", "image": str(diagram)}, "Answer: 1", {"model": "m"})
    store.add("down", {"question": "Find y.", "image": str(diagram)}, "Answer: 2", {"model": "m"})
    row = next(store.rows())
    out = tmp_path / "fb.jsonl"
    partial = tmp_path / "fb_images" / f"{row['image_sha256']}.png"
    partial.parent.mkdir()
    partial.write_bytes(row["image"][: len(row["image"]) // 2])
    assert store.export(out) == 2
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all((tmp_path / e["image"]).read_bytes() == row["image"] for e in exported)

    # A row whose stored bytes no longer match their hash is exported without a diagram, and said so.
    store.db.execute("UPDATE feedback SET image = ? WHERE id = 2", [row["image"][:100]])
    store.db.conn.commit()
    exported = [json.loads(line) for line in (store.export(out) and out.read_text(encoding="utf-8")).splitlines()]
    assert exported[0]["image"] and exported[1]["image"] is None
    assert "feedback row 2: its stored diagram does not match" in capsys.readouterr().err
    assert not list(partial.parent.glob("*.tmp"))


def test_feedback_before_solving_is_refused(tmp_path):
    store = feedback.FeedbackStore(tmp_path / "fb.sqlite")
    assert "Solve a problem first" in handlers.send_feedback(store, handlers.empty_state(), "up")
    assert store.count() == {}


def test_feedback_export_without_db_explains(tmp_path, capsys):
    assert feedback.main(["export", "--db", str(tmp_path / "none.sqlite")]) == 1
    assert "no feedback database" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ bank tab
def test_bank_search_lists_matches_and_detail_shows_roles_and_example(bank):
    note, found = handlers.search_bank(bank, "parallel lines corresponding angles")
    ids = [tid for _, tid in found]
    assert "parallel_corresponding_angles" in ids and len(ids) == len(set(ids))
    detail = handlers.theorem_detail(bank, "parallel_corresponding_angles")
    assert "angle1" in detail and "Roles" in detail and "Example" in detail and "If" in detail
    note, everything = handlers.search_bank(bank, "")
    assert len(everything) == len(bank.all())


def test_about_names_the_model_and_explains_the_demo():
    identity = {"model": "/x/demo_model", "backend": "local", "device": "cpu", "demo": True,
                "demo_note": serving.DEMO_NOTE}
    text = handlers.about(identity)
    assert "/x/demo_model" in text and "embedded demo model" in text and "--adapter" in text


# ------------------------------------------------------------------------------------------------ serving
def test_without_demo_model_a_random_tiny_model_serves_with_a_visible_warning(monkeypatch, tmp_path, tiny_model_dir):
    import shutil

    import model.tiny

    monkeypatch.setattr(serving, "DEMO_MODEL_DIR", tmp_path / "demo_model")
    monkeypatch.setenv("THEOREM_TUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(model.tiny, "build_tiny_checkpoint",
                        lambda out, seed=0: shutil.copytree(tiny_model_dir, out, dirs_exist_ok=True))
    tutor = serving.open_tutor(serving.ServingConfig(max_new_tokens=4))
    assert tutor.identity["random"] and "RANDOM weights" in tutor.identity["warning"]
    assert str(tmp_path / "demo_model") in tutor.identity["warning"] and tutor.identity["device"].startswith("cpu")
    assert "RANDOM weights" in handlers.about(tutor.identity)


def test_build_app_wires_queue_limits_and_launch_options(tiny_model_dir, tmp_path):
    from app.__main__ import build_app, parse_args

    args = parse_args(["--model", str(tiny_model_dir), "--device", "cpu", "--retrieval", "bm25", "--concurrency", "2",
                       "--max-queue", "5", "--feedback-db", str(tmp_path / "fb.sqlite"), "--max-new-tokens", "4"])
    blocks, launch = build_app(args)
    assert blocks._queue.max_size == 5 and blocks._queue.default_concurrency_limit == 2
    assert launch["server_name"] == "127.0.0.1" and launch["share"] is False
    assert (tmp_path / "fb.sqlite").exists()


def test_answer_box_gives_the_checkers_run_of_the_steps(bank, diagram):
    final = run(ScriptedTutor(GOLD), bank, image=diagram, question=QUESTION, choices=CHOICES)[-1]
    assert 'class="tt-choice">B<' in final.answer and "tt-conf-high" in final.answer
    assert "tt-model-answer" not in final.answer  # the model's line agrees: it is not repeated
    # The model slips in step 1 (50° -> 60°) and answers 120°, a value among no choices: the checker carries
    # the correct 50° into step 2 and shows 130°, choice B; the model's own line is shown apart, as the model's.
    slipped = GOLD.replace("∠GHD = 50°\n", "∠GHD = 60°\n").replace("angle1 = ∠GHD = 50°", "angle1 = ∠GHD = 60°") \
                  .replace("∠GHC = 130°", "∠GHC = 120°").replace("Answer: 130° (B)", "Answer: 120° (D)")
    final = run(ScriptedTutor(slipped), bank, image=diagram, question=QUESTION, choices=CHOICES)[-1]
    assert 'class="tt-answer-value">130°<' in final.answer and 'class="tt-choice">B<' in final.answer
    assert 'class="tt-choice">D<' not in final.answer and "tt-conf-high" not in final.answer
    assert "The model's own Answer line said “120° (D)”" in final.answer


def test_a_solve_before_the_model_is_loaded_says_so_then_answers(bank, diagram):
    """python -m app serves its page while the model loads (app.serving.Loading): an early Solve first says the
    model is loading, touching nothing else on the page, then answers as usual once it is ready."""
    import threading

    import gradio as gr

    from app import ui

    gate = threading.Event()
    tutor = serving.Loading("model", lambda: gate.wait(60) and ScriptedTutor(GOLD),
                            preview=dict(ScriptedTutor.identity)).start()
    solving = ui.solve_when_ready(tutor, bank, diagram, QUESTION, *CHOICES, False, None)
    status, *rest = next(solving)
    assert "Loading the model" in status and rest == [gr.skip()] * 4 and not tutor.ready
    gate.set()
    final = list(solving)[-1]
    assert tutor.ready and 'class="tt-choice">B<' in final.answer and "Loading the model" not in final.status


def test_a_model_that_fails_to_load_is_said_at_the_solve_not_raised(bank):
    def broken():
        raise SystemExit("--backend openai: no server answers at http://127.0.0.1:9/v1")

    from app import ui

    tutor = serving.Loading("model", broken).start()
    shown = list(ui.solve_when_ready(tutor, bank, None, QUESTION, *CHOICES, False, None))
    assert "no server answers at http://127.0.0.1:9/v1" in shown[-1][0] and "could not start" in shown[-1][0]
    with pytest.raises(RuntimeError, match="loading the model failed"):
        tutor.get()
