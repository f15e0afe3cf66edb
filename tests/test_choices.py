"""One choice alphabet from prompt to grade: a record with nine choices is lettered A-I in its prompt, its target
closes with "(I)", and that letter is read back and graded by the answer extractor, the scorer and the app."""
from __future__ import annotations

import pytest

from model import choices
from model.answers import extract_answer, grade
from model.profile import default_profile
from model.prompting import problem_messages
from training.records import ProblemRecord
from training.targets import answer_line

NINE = [f"{10 * (i + 1)}°" for i in range(9)]


def nine_choice_record() -> ProblemRecord:
    return ProblemRecord(id="nine-0", source="fixture", split="test", question="Find ∠ABC.", choices=NINE,
                         answer="90°", answer_index=8, steps=None)


def test_a_nine_choice_record_round_trips():
    record = nine_choice_record()
    line = answer_line(record)
    assert line == "Answer: 90° (I)"
    messages = problem_messages(record.question, record.choices, None, None, default_profile().replace(prompt_theorems=0))
    assert "\nI. 90°" in messages[1]["content"][-1]["text"]
    extracted = extract_answer(line, record.choices)
    assert (extracted.letter, choices.without_letter(extracted.value)) == ("I", "90°")
    assert grade(extracted, record.answer, record.choices, choices.record_letter(record))
    # a wrong letter beside the right value is graded by the letter, as for A-D
    assert not grade(extract_answer("Answer: 90° (H)", record.choices), record.answer, record.choices, "I")


def test_the_scorer_reads_the_ninth_letter():
    from training.evaluation.scoring import score_output

    line = score_output(nine_choice_record(), "Answer: 90° (I)", mode="choice")
    assert line["correct"] is True and line["gold_letter"] == "I"


def test_the_app_names_the_ninth_choice():
    from app import render

    box = render.answer_box({"value": "90°", "letter": "I", "confidence": "high", "why": ""}, NINE)
    assert 'class="tt-choice">I<' in box and "(90°)" in box


def test_letters_and_their_limits():
    assert choices.letter(0) == "A" and choices.letter(25) == "Z" and choices.index_of("i") == 8
    assert choices.index_of("AB") is None and choices.index_of(None) is None
    with pytest.raises(choices.ChoiceError, match="26"):
        choices.letter(26)
    with pytest.raises(choices.ChoiceError, match="27 choices"):
        choices.lettered([str(i) for i in range(27)])
    assert choices.split_letter("130° (B)") == ("130°", "B")
    assert choices.split_letter("130°") == ("130°", None)
    assert choices.answer_line("5", None) == "Answer: 5"
