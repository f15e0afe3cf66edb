"""Prompt diversity (optional, off by default): instruction phrasings and choice shuffling.

Both are seeded by (seed, record id) only, never by the target kind, so the theorem, plain and answer
targets of one problem see the same instruction and the same choice order: the controls stay matched.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random

from model.choices import letter as choice_letter
from training.records import ProblemRecord

INSTRUCTIONS = (
    "Solve the problem. Give your reasoning, then the final answer.",
    "Work out the answer to this geometry question step by step.",
    "Find the requested value and explain how you got it.",
    "Answer the question below, showing the theorems you use.",
    "Read the problem carefully and determine the answer.",
    "Use the given information to solve the problem.",
    "Compute the answer. End with a line of the form 'Answer: ...'.",
    "Solve this problem as a careful student would, one step at a time.",
    "What is the answer? Justify each step.",
    "Determine the unknown quantity asked for in the problem.",
    "Please solve the following problem and state the final answer clearly.",
    "Reason through the problem and report the result.",
)


def _rng(seed: int, record_id: str, purpose: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{purpose}:{record_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def pick_instruction(record: ProblemRecord, seed: int = 0) -> str:
    return _rng(seed, record.id, "instruction").choice(INSTRUCTIONS)


def shuffle_choices(record: ProblemRecord, seed: int = 0) -> ProblemRecord:
    """A copy with its choices permuted and answer_index remapped so it still points at the gold answer."""
    if not record.choices or record.answer_index is None:
        return record
    order = list(range(len(record.choices)))
    _rng(seed, record.id, "choices").shuffle(order)
    choices = [record.choices[i] for i in order]
    answer_index = order.index(record.answer_index)
    meta = dict(record.meta, choice_order=order)
    if "answer_label" in meta:
        meta["answer_label"] = choice_letter(answer_index)
    return dataclasses.replace(record, choices=choices, answer_index=answer_index, meta=meta)
