"""Grounding (model.grounding), verifier-guided selection (model.selection), sampling in one batch, and the answer
box and feedback built on them (app.handlers): the tutor shows the value it trusts and never a contradicting letter."""
from __future__ import annotations

import json
import re

import pytest

from app import feedback, handlers
from model.grounding import ground_solution, points_in, problem_context
from model.selection import select, trusted_choice
from model.solution_format import Step, parse

QUESTION = "AB ∥ CD, EF crosses them at G and H, ∠EGB = 50°. Find ∠GHC."
CHOICES = ["50°", "130°", "40°", "140°"]
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
# Arithmetic that holds, on points the problem does not have (I, M, O) and a given it never states (40°).
UNGROUNDED = (
    "Theorem: vertical_angles | Vertical angles\n"
    "Cond: AB and IM cross at O\n"
    "Map: angle1 = ∠AOI = 40°; angle2 = ∠BOM\n"
    "Exec: angle2 = angle1 => ∠BOM = 40°\n"
    "Answer: 40° (C)\n"
)


@pytest.fixture(scope="module")
def bank():
    from theorem_bank import open_bank

    return open_bank(dense=False)


def test_points_are_read_from_point_groups_not_words():
    assert points_in("As shown, in △ACG, I lies on CG. Find ∠AGI.") == ["A", "C", "G", "I"]
    assert points_in("In the figure AB ∥ CD") == ["A", "B", "C", "D"]


def test_gold_solutions_of_the_gallery_are_grounded():
    from app.examples import load_gallery

    gallery = load_gallery()
    assert len(gallery) == 28
    for example in gallery:
        solution = parse(example.solution)
        grounding = ground_solution(solution.steps, problem_context(example.question, example.choices))
        assert all(g.grounded for g in grounding), (example.family, [g.reason() for g in grounding])


def test_invented_points_and_values_are_not_grounded():
    context = problem_context(QUESTION, CHOICES)
    (grounding,) = ground_solution(parse(UNGROUNDED).steps, context)
    assert not grounding.grounded
    assert {"I", "M", "O"} <= set(grounding.missing_points)
    assert grounding.ungrounded_values == ["angle1 = ∠AOI = 40°"]
    assert "does not have" in grounding.reason()


def test_a_value_concluded_earlier_is_a_given_for_later_steps():
    steps = parse(GOLD).steps
    grounding = ground_solution(steps, problem_context(QUESTION, CHOICES))
    assert [g.grounded for g in grounding] == [True, True]  # ∠GHD = 50° comes from step 1, not the question
    alone = ground_solution(steps[1:], problem_context(QUESTION, CHOICES))
    assert alone[0].grounded  # 50 is in the question too
    other = ground_solution([Step("linear_pair", cond="", map="angle1 = ∠GHD = 70°; angle2 = ∠GHC",
                                  exec="angle1 + angle2 = 180° => ∠GHC = 110°")], problem_context(QUESTION))
    assert not other[0].grounded and other[0].ungrounded_values == ["angle1 = ∠GHD = 70°"]


@pytest.mark.parametrize("value, choices, letter", [
    ("134", ["46°", "113°", "134°", "268°"], "C"),          # degrees on the choice only
    ("15*sqrt(2)/2", ["15", "\\frac{15\\sqrt{2}}{2}", "30", "7.5"], "B"),   # math-verify equality
    ("2*sqrt(3)", ["2√3 cm", "3", "4", "6"], "A"),          # units on the choice
    ("8*sqrt(2)", ["8", "16", "4", "12"], None),             # no choice equals it: no letter at all
])
def test_trusted_value_is_matched_to_the_choices_by_the_grader(value, choices, letter):
    assert trusted_choice(value, choices) == letter


def test_selection_prefers_grounded_verified_chains_then_agreement(bank):
    context = problem_context(QUESTION, CHOICES)
    slipped = GOLD.replace("=> ∠GHD = 50°", "=> ∠GHD = 40°").replace("angle1 = ∠GHD = 50°", "angle1 = ∠GHD = 40°")
    selection = select([UNGROUNDED, GOLD, slipped, GOLD], context, CHOICES, bank)
    assert selection.chosen.index == 1 and selection.chosen.value.startswith("130")
    assert selection.chosen.letter == "B"
    # the slipped chain executes to 130 too (the checker carries the correct 50°): three of four agree
    assert selection.agree == 3 and selection.total == 4 and selection.confidence == "high"
    assert [c.index for c in selection.alternatives()][-1] == 0  # the ungrounded chain ranks last


def test_an_ungrounded_chain_is_never_high_confidence(bank):
    selection = select([UNGROUNDED], problem_context(QUESTION, CHOICES), CHOICES, bank)
    assert selection.chosen.value is not None and selection.chosen.badges() == ["ungrounded"]
    assert selection.confidence == "low"


class ScriptedTutor:
    identity = {"model": "scripted", "adapter": None, "backend": "test", "device": "cpu", "demo": False}

    def __init__(self, first: str, others: list[str] = ()):
        self.first, self.others = first, list(others)
        self.num_samples = 1 + len(self.others)

    def stream(self, question, choices=None, image=None, theorems=()):
        yield from re.findall(r"\S+\s*|\n", self.first)

    def sample(self, question, choices, image, theorems, n):
        assert n == len(self.others)
        return list(self.others)


def solve(tutor, bank, question=QUESTION, choices=CHOICES, flag=""):
    return list(handlers.solve(tutor, bank, None, question, *choices, False, None, flag))


def _letters_shown(answer_html: str) -> list[str]:
    return re.findall(r'class="tt-choice">([A-H])<', answer_html)


def test_answer_box_never_shows_the_models_letter_when_it_differs(bank):
    # the model's chain executes to 130° (B) but its Answer line says D
    text = GOLD.replace("Answer: 130° (B)", "Answer: 140° (D)")
    final = solve(ScriptedTutor(text), bank)[-1]
    assert _letters_shown(final.answer) == ["B"]
    assert "The model's own Answer line said “140° (D)”" in final.answer


def test_no_matching_choice_is_said_in_the_box(bank):
    choices = ["50°", "120°", "40°", "140°"]  # 130° is none of them
    final = solve(ScriptedTutor(GOLD), bank, choices=choices)[-1]
    assert _letters_shown(final.answer) == [] and "none of the choices equals this value" in final.answer
    assert "tt-conf-high" not in final.answer


def test_ungrounded_chain_gets_its_badge_and_no_green(bank):
    final = solve(ScriptedTutor(UNGROUNDED), bank)[-1]
    assert "arithmetic right, not grounded" in final.steps and "✓ verified" not in final.steps
    assert "tt-conf-low" in final.answer and "tt-conf-high" not in final.answer


def test_samples_agree_line_and_the_alternatives(bank):
    tutor = ScriptedTutor(UNGROUNDED, [GOLD, GOLD])
    views = solve(tutor, bank)
    assert any("Checking 2 more solutions" in v.status for v in views)
    final = views[-1]
    assert "2 of 3 solutions agree" in final.answer and _letters_shown(final.answer) == ["B"]
    assert "See the other 2 solutions" in final.answer
    assert "Showing solution 2 of 3" in final.status
    assert final.state["chosen"] == 1 and final.state["output"] == GOLD


def test_rejected_upload_blocks_solve_with_a_message(bank):
    tutor = ScriptedTutor(GOLD)
    views = solve(tutor, bank, flag="photo.png|108000000|2097152")
    assert len(views) == 1 and "was not accepted" in views[0].status and "108 MB" in views[0].status
    assert views[0].steps == "" and views[0].answer == ""
    first = solve(tutor, bank)[0]
    assert "Solving without a diagram" in first.status


def test_feedback_stores_what_was_shown_once_per_click_intent(bank, tmp_path):
    store = feedback.FeedbackStore(tmp_path / "fb.sqlite")
    final = solve(ScriptedTutor(UNGROUNDED, [GOLD, GOLD]), bank)[-1]
    first = handlers.send_feedback(store, final.state, "down", "")
    again = handlers.send_feedback(store, final.state, "down", "the picture has no O")
    assert "saved" in first and "already saved" in again
    rows = list(store.rows())
    assert len(rows) == 1 and rows[0]["comment"] == "the picture has no O"
    shown = json.loads(rows[0]["shown"])
    assert shown["chosen_sample"] == 1 and shown["samples"] == 3 and shown["badges"] == ["verified", "verified"]
    assert rows[0]["answer"] == final.state["shown_answer"] and "choice B" in rows[0]["answer"]
    assert rows[0]["output"] == GOLD  # the chain that was shown, not the first one written
    handlers.send_feedback(store, final.state, "up", "")
    assert len(list(store.rows())) == 2  # another intent, another row


def test_feedback_file_of_version_1_gains_the_new_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE feedback (id INTEGER PRIMARY KEY, created TEXT, rating TEXT, comment TEXT, "
                   "question TEXT, choices TEXT, image_sha256 TEXT, image BLOB, output TEXT, answer TEXT, model TEXT)")
        db.execute("INSERT INTO feedback (rating, question) VALUES ('up', 'old row')")
        db.execute("PRAGMA user_version = 1")
    store = feedback.FeedbackStore(path)
    row, new = store.add("down", {"question": "q"}, "out", {}, shown={"answer": "5"}, intent="x:down")
    assert new and [r["question"] for r in store.rows()] == ["old row", "q"]


def test_local_backend_samples_n_chains_per_conversation_in_one_batch(tiny_model_dir):
    from model.generation import GenerationOptions, sample
    from model.loading import load_model
    from model.prompting import build_messages

    loaded = load_model(str(tiny_model_dir), device="cpu")
    conversations = [build_messages(q, choices=None, image=None, theorems=[]) for q in ("Find x.", "Find ∠ABC.")]
    options = GenerationOptions(max_new_tokens=12, do_sample=True, num_samples=3, temperature=1.0, top_p=1.0,
                                top_k=0, seed=0)
    texts = sample(loaded, conversations, options)
    assert [len(t) for t in texts] == [3, 3]
    assert len(set(texts[0])) > 1  # sampled, not three copies of one greedy text
    with pytest.raises(ValueError, match="do_sample"):
        GenerationOptions(num_samples=2)


def test_openai_request_asks_for_n_completions_in_one_request():
    from model.backends import OpenAIBackend
    from model.generation import GenerationOptions

    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m")
    body = backend.request_body([{"role": "user", "content": "hi"}],
                                GenerationOptions(do_sample=True, num_samples=4, seed=1), streaming=False)
    assert body["n"] == 4 and body["temperature"] > 0 and body["seed"] == 1


def test_evaluator_selects_among_sampled_chains_as_the_app_does(bank, tiny_model_dir):
    """backend_generator gives each prompt the greedy chain plus N-1 sampled ones; prediction_line grades the
    chain model.selection picks, and keeps every sample and what the selection saw."""
    from model.backends import LocalBackend
    from model.generation import GenerationOptions
    from model.prompting import build_messages
    from training.evaluation.runner import EvalItem, RunSettings, backend_generator, prediction_line
    from training.records import ProblemRecord

    backend = LocalBackend.load(str(tiny_model_dir), device="cpu")
    generate = backend_generator(backend, GenerationOptions(max_new_tokens=8), sampling={"samples": 3, "seed": 0})
    prompts = [{"key": "p1", "messages": build_messages("Find x.", choices=None, image=None, theorems=[])}]
    (texts,) = generate(prompts)
    assert isinstance(texts, list) and len(texts) == 3
    assert texts[0] == backend.generate([prompts[0]["messages"]], GenerationOptions(max_new_tokens=8))[0]

    record = ProblemRecord(id="p1", source="test", split="test", image=None, question=QUESTION, choices=CHOICES,
                           answer="130°", answer_index=1)
    settings = RunSettings(benchmark="synthetic", data="x", sampling={"samples": 3})
    prompt = {"key": "p1", "image": None, "theorem_ids": [], "renamed_points": {}}
    line = prediction_line(EvalItem("p1", record), prompt, [UNGROUNDED, GOLD, GOLD], settings, bank, {}, 0.1)
    assert line["output"] == GOLD and line["samples"] == [UNGROUNDED, GOLD, GOLD]
    assert line["selection"]["chosen"] == 1 and line["selection"]["agree"] == 2 and line["tutor_correct"]
    assert "sampling" in settings.result_key() and "sampling" not in RunSettings("synthetic", "x").result_key()
