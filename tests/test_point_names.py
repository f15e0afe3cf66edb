"""Renaming point letters a from-scratch model never saw: the plan, the round trip, streaming, and the
evaluator and tutor using it end to end."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from model.profile import load_profile
from model.point_names import (Renaming, plan_renaming, point_letters,
                               trained_alphabet)

TRAINED = "ABCDEFGHIJKLMNO"
QUESTION = "In △PQR, S lies on the extension of QR, ∠P = 50°, ∠Q = 60°. Find ∠PRS."
OUTPUT = """Theorem: triangle_angle_sum | Angle sum of a triangle
Cond: △PQR
Map: angle1 = ∠P = 50°; angle2 = ∠Q = 60°; angle3 = ∠PRQ
Exec: angle1 + angle2 + angle3 = 180° => ∠PRQ = 70°
Answer: 110° (B)
"""


def test_point_letters_are_capitals_not_starting_a_word():
    assert point_letters("Theorem: In △DHE, ∠DHE = 81°; Map AB") == ["D", "H", "E", "A", "B"]
    assert trained_alphabet(["△ABC", "⊙O, AB ∥ CD", "Find ∠A"]) == "ABCDO"


def test_unseen_letters_go_to_free_trained_letters_in_the_same_order():
    renaming = plan_renaming([QUESTION, "110°", "70°"], TRAINED)
    assert set(renaming.forward) == {"P", "Q", "R", "S"}
    new = [renaming.forward[letter] for letter in "PQRS"]
    assert new == sorted(new) and len(set(new)) == 4 and "O" not in new  # △PQR stays a sorted name
    assert all(letter in TRAINED for letter in new)
    renamed = renaming.rename(QUESTION)
    assert not set(point_letters(renamed)) - set(TRAINED)
    assert "Find" in renamed and "In △" in renamed  # words are left alone


def test_letters_the_model_knows_are_never_renamed():
    assert plan_renaming(["In △ABC, ∠A = 50°, ⊙O"], TRAINED).forward == {}
    mixed = plan_renaming(["In △ABP, ∠P = 50°"], TRAINED)
    assert list(mixed.forward) == ["P"] and mixed.forward["P"] not in "AB"
    assert plan_renaming([QUESTION], None).forward == {}  # no alphabet recorded: a pretrained model


def test_restore_inverts_rename_and_keeps_the_choice_letter():
    renaming = plan_renaming([QUESTION], TRAINED)
    written_by_model = renaming.rename(OUTPUT)
    assert written_by_model != OUTPUT
    assert renaming.restore(written_by_model) == OUTPUT
    # Even when a renamed point took a choice letter, the Answer line's choice is not renamed back.
    taken = Renaming({"P": "B"})
    assert taken.restore("Map: angle1 = ∠B = 50°\nAnswer: 50° (B)\n") == "Map: angle1 = ∠P = 50°\nAnswer: 50° (B)\n"
    assert taken.restore("Answer: ∠B (B)") == "Answer: ∠P (B)"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(OUTPUT)), max_size=12))
def test_streamed_restore_equals_restore_of_the_whole_text(cuts):
    renaming = plan_renaming([QUESTION], TRAINED)
    text = renaming.rename(OUTPUT)
    bounds = sorted(set([0, *cuts, len(text)]))
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    assert "".join(renaming.restore_stream(pieces)) == renaming.restore(text) == OUTPUT


def test_evaluator_renames_in_the_prompt_and_grades_the_restored_output(tmp_path):
    from training.evaluation.runner import EvalItem, RunSettings, evaluate_items
    from training.records import ProblemRecord

    record = ProblemRecord(id="surface-0", source="synthetic", split="test_surface", question=QUESTION,
                           choices=["70°", "110°", "50°", "60°"], answer="110°", answer_index=1,
                           meta={"family": "triangle_exterior_angle"})
    seen_prompts = []

    def model_that_copies_what_it_was_shown(prompts):
        seen_prompts.extend(prompts)
        out = []
        for prompt in prompts:
            shown = prompt["messages"][-1]["content"][-1]["text"]
            out.append(Renaming(prompt["renamed_points"]).rename(OUTPUT) if "P" not in shown else OUTPUT)
        return out

    from model.profile import default_profile

    settings_ = RunSettings(benchmark="synthetic", data="fixture", model="scripted",
                            profile=default_profile().replace(prompt_theorems=0, point_names=TRAINED))
    lines = evaluate_items([EvalItem(key=record.id, record=record)], settings_, tmp_path, model_that_copies_what_it_was_shown,
                           progress=False)
    shown = seen_prompts[0]["messages"][-1]["content"][-1]["text"]
    assert not set(point_letters(shown.split("Choices:")[0])) - set(TRAINED)
    assert lines[0]["output"] == OUTPUT  # graded and stored with the problem's own names
    assert lines[0]["renamed_points"] == seen_prompts[0]["renamed_points"] != {}
    assert lines[0]["correct"] is True


class ScriptedBackend:
    """A backend whose stream is a given function of the messages (model.backends' interface)."""

    def __init__(self, stream_messages):
        self.stream_messages = stream_messages

    def stream(self, messages, options=None):
        return self.stream_messages(messages)


def test_tutor_streams_the_answer_with_the_students_names():
    from app.serving import Tutor

    shown_to_model = []

    def stream_messages(messages):
        shown_to_model.append(messages[-1]["content"][-1]["text"])
        renaming = plan_renaming([QUESTION, "70°", "110°"], TRAINED)
        text = renaming.rename(OUTPUT)
        yield from (text[i:i + 3] for i in range(0, len(text), 3))  # pieces that split names and words

    from model.profile import default_profile

    tutor = Tutor(ScriptedBackend(stream_messages), {"model": "scripted"},
                  profile=default_profile().replace(prompt_theorems=0, point_names=TRAINED))
    streamed = "".join(tutor.stream(QUESTION, ["70°", "110°"]))
    assert streamed == OUTPUT
    assert not set(point_letters(shown_to_model[0].split("Choices:")[0])) - set(TRAINED)
    # a model served without an alphabet (the 7B) sees the question as the student wrote it
    plain = Tutor(ScriptedBackend(lambda m: iter([m[-1]["content"][-1]["text"]])), {"model": "scripted"},
                  profile=default_profile().replace(prompt_theorems=0))
    assert "".join(plain.stream(QUESTION)) == QUESTION


def test_a_from_scratch_training_records_the_point_letters_it_saw(tmp_path):
    from pathlib import Path

    from training.config import load_config
    from training.trainer import run_training

    repo = Path(__file__).resolve().parents[1]
    config = load_config(repo / "configs" / "tiny-test.yaml", [f"train.output_dir={tmp_path / 'run'}",
                                                                "train.max_steps=1", "train.save_steps=100"])
    out = Path(run_training(config).output_dir)
    questions = [json.loads(line)["question"] for line in (repo / "tests" / "fixtures" / "train" / "train.jsonl")
                 .read_text(encoding="utf-8").splitlines()]
    assert load_profile(out).point_names == trained_alphabet(questions) != ""
