"""The held-out splits, disjoint from train by construction.

train and test_iid draw from the same pools. Each other test split changes one factor:
test_surface the point letters, phrasings and drawing styles; test_compose the chain of theorems
(combinations never generated for train); test_numbers the values (outside the train ranges).
"""
from __future__ import annotations

from dataclasses import dataclass

from .drawing import STYLES
from .families import FAMILIES, Family
from .phrasing import PHRASINGS

SPLITS = ("train", "test_iid", "test_surface", "test_compose", "test_numbers")
CENTRE = "O"   # the centre keeps its conventional letter everywhere
TRAIN_LETTERS = "ABCDEFGHIJKLMN"
SURFACE_LETTERS = "PQRSTUVWXYZ"
TRAIN_PHRASINGS = tuple(range(5))
SURFACE_PHRASINGS = tuple(range(5, len(PHRASINGS)))
TRAIN_STYLES = tuple(range(4))
SURFACE_STYLES = tuple(range(4, len(STYLES)))


@dataclass(frozen=True)
class SplitPlan:
    letters: str
    phrasings: tuple[int, ...]
    styles: tuple[int, ...]
    held_out_chains: bool     # draw chains from Family.held_out instead of Family.chains
    regime: str               # "train" or "out" number ranges


PLANS = {
    "train": SplitPlan(TRAIN_LETTERS, TRAIN_PHRASINGS, TRAIN_STYLES, False, "train"),
    "test_iid": SplitPlan(TRAIN_LETTERS, TRAIN_PHRASINGS, TRAIN_STYLES, False, "train"),
    "test_surface": SplitPlan(SURFACE_LETTERS, SURFACE_PHRASINGS, SURFACE_STYLES, False, "train"),
    "test_compose": SplitPlan(TRAIN_LETTERS, TRAIN_PHRASINGS, TRAIN_STYLES, True, "train"),
    "test_numbers": SplitPlan(TRAIN_LETTERS, TRAIN_PHRASINGS, TRAIN_STYLES, False, "out"),
}


def families_for(split: str) -> list[Family]:
    """The families that apply to a split: test_compose needs a held-out chain."""
    plan = PLANS[split]
    return [f for f in FAMILIES.values() if (f.held_out if plan.held_out_chains else f.chains)]


def chains_for(family: Family, split: str) -> tuple[tuple[str, ...], ...]:
    return family.held_out if PLANS[split].held_out_chains else family.chains


def train_chains() -> set[tuple[str, ...]]:
    return {c for f in FAMILIES.values() for c in f.chains}


def check_disjoint() -> None:
    """Fail loudly if a held-out chain is also a train chain, or uses a theorem train never shows."""
    seen = train_chains()
    seen_theorems = {t for c in seen for t in c}
    for family in FAMILIES.values():
        for chain in family.held_out:
            if chain in seen:
                raise ValueError(f"family {family.name}: held-out chain {chain} is also generated for train")
            missing = set(chain) - seen_theorems
            if missing:
                raise ValueError(f"family {family.name}: held-out chain {chain} uses {sorted(missing)}, never seen in train")
    if set(TRAIN_LETTERS) & set(SURFACE_LETTERS) or CENTRE in TRAIN_LETTERS + SURFACE_LETTERS:
        raise ValueError("letter pools overlap")
