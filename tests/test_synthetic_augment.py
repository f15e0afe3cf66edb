"""Filler-word augmentation: it keeps every given and the asked object, is deterministic, and uses no held-out
phrasing."""
from __future__ import annotations

import random

import pytest

from model.point_names import point_letters
from training.records import ProblemRecord
from training.synthetic.augment import augment_record, filler_question, split_question
from training.synthetic.phrasing import PHRASINGS, phrase
from training.synthetic.splits import SURFACE_PHRASINGS

GIVEN = "in △ABC, D lies on the extension of BC, ∠A = 50°, ∠B = 60°"
ASK = "∠ACD"


@pytest.mark.parametrize("phrasing_id", range(len(PHRASINGS)))
def test_every_phrasing_splits_back_into_given_and_ask(phrasing_id):
    assert split_question(phrase(phrasing_id, GIVEN, ASK), phrasing_id) == (GIVEN, ASK)


def test_a_question_of_another_phrasing_does_not_split():
    assert split_question(phrase(0, GIVEN, ASK), 1) is None
    assert split_question("Find ∠A.", 99) is None


def test_filler_keeps_givens_and_ask_in_order_and_adds_no_point_letters():
    for seed in range(300):
        text = filler_question(GIVEN, ASK, random.Random(seed))
        body = text[:1].lower() + text[1:]
        assert GIVEN[1:] in body and text.index(GIVEN[1:]) < text.rindex(ASK)
        assert point_letters(text) == point_letters(f"{GIVEN} {ASK}")  # filler words never look like points
        held_out_words = {"diagram", "know", "determine", "look", "large", "suppose", "does"}
        assert not held_out_words & set(text.lower().replace("?", " ").replace(".", " ").split())


def record(i: int, phrasing_id: int = 0) -> ProblemRecord:
    return ProblemRecord(id=f"syn-{i}", source="synthetic", split="train", question=phrase(phrasing_id, GIVEN, ASK),
                         choices=["110°", "70°", "50°", "60°"], answer="110°", answer_index=0,
                         meta={"family": "triangle_exterior_angle", "phrasing_id": phrasing_id})


def test_augmentation_is_deterministic_and_touches_about_the_asked_share():
    records = [record(i, i % 5) for i in range(400)]
    first = [augment_record(r, 0.5, seed=0) for r in records]
    assert [r.question for r in first] == [augment_record(r, 0.5, seed=0).question for r in records]
    changed = [a for a, r in zip(first, records) if a.question != r.question]
    assert 150 < len(changed) < 250
    assert all(a.meta["filler_augmented"] and a.answer == "110°" and a.choices == r.choices
               for a, r in zip(first, records) if a.question != r.question)
    assert [r.question for r in first] != [augment_record(r, 0.5, seed=1).question for r in records]


def test_records_without_a_known_phrasing_are_left_alone():
    plain = ProblemRecord(id="geoqa-1", source="geoqa", split="train", question="Find ∠A.", answer="30°", meta={})
    assert augment_record(plain, 1.0, 0) is plain
    assert augment_record(record(0), 0.0, 0).question == record(0).question
    assert all(p not in range(5) for p in SURFACE_PHRASINGS)  # the held-out phrasings are not the train ones
