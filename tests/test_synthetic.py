"""The synthetic curriculum: checked gold steps, distractors, splits that hold out what they claim, determinism."""
from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest
from PIL import Image

from model.checker import check_solution
from model.solution_format import parse
from training.records import read_records
from training.synthetic.__main__ import main as cli_main
from training.synthetic.core import RANGES, CoreBank, Picker, core_theorems
from training.synthetic.families import FAMILIES
from training.synthetic.generate import generate, make_problem, split_sizes
from training.synthetic.phrasing import PHRASINGS
from training.synthetic.splits import (CENTRE, PLANS, SPLITS, SURFACE_LETTERS, SURFACE_PHRASINGS, SURFACE_STYLES,
                                       TRAIN_LETTERS, check_disjoint, families_for, train_chains)
from training.targets import target_text

BANK = CoreBank()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One small generated curriculum (every split holds every family that applies to it)."""
    out = tmp_path_factory.mktemp("synthetic")
    manifest = generate(n=300, seed=7, out=out, test_fraction=0.1, progress=False)
    records = {split: list(read_records(out / f"{split}.jsonl")) for split in SPLITS}
    return out, manifest, records


@pytest.fixture(scope="module")
def plan_sample():
    """A large sample of problems without checking or drawing: what each split draws from its plan."""
    sample = {}
    for split in SPLITS:
        count = 2000 if split == "train" else 300
        sample[split] = [make_problem(split, i, 11, check=False, draw=False).record for i in range(count)]
    return sample


def letters_of(record) -> set[str]:
    return set(record.meta["letters"])


# ---------------------------------------------------------------------------------- the contract

def test_at_least_twenty_families_each_with_core_theorems():
    assert len(FAMILIES) >= 20
    core = core_theorems()
    for family in FAMILIES.values():
        for chain in family.chains + family.held_out:
            assert 1 <= len(chain) <= 3 and set(chain) <= set(core), (family.name, chain)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_chain_of_a_family_builds_steps_with_core_roles_that_check(name):
    family, core = FAMILIES[name], core_theorems()
    for chain in family.chains + family.held_out:
        for regime in ("train", "out"):
            rng = random.Random(f"{name}/{chain}/{regime}")
            draft = family.build(rng, Picker(rng, name, regime), chain)
            assert tuple(s["theorem"] for s in draft.steps) == chain
            for step in draft.steps:
                roles = {entry.split("=")[0].strip() for entry in step["map"].split(";")}
                assert roles <= set(core[step["theorem"]]["roles"]), step
            solution = parse("\n".join(f"Theorem: {s['theorem']}\nCond: {s['cond']}\nMap: {s['map']}\nExec: {s['exec']}"
                                       for s in draft.steps) + "\nAnswer: x")
            assert [c.status for c in check_solution(solution, BANK)] == ["verified"] * len(chain), (chain, draft.steps)
            assert draft.steps[-1]["exec"].rpartition("=")[2].strip() == draft.answer.text(draft.unit)


def test_later_steps_use_earlier_results():
    for family in FAMILIES.values():
        for chain in family.chains + family.held_out:
            if len(chain) < 2:
                continue
            rng = random.Random(family.name)
            draft = family.build(rng, Picker(rng, family.name), chain)
            for before, after in zip(draft.steps, draft.steps[1:]):
                obj, _, value = before["exec"].partition("=>")[2].strip().partition(" = ")
                # the result enters the next step as a Map value, or as its premise (∠OAP = 90° for Pythagoras)
                assert f"{obj} = {value}" in after["map"] or f"{obj} = {value}" in after["cond"], (before, after)


# ---------------------------------------------------------------------------------- emitted records

def test_every_emitted_theorem_target_checks_verified_and_ends_at_gold(run):
    _, _, records = run
    for split, rows in records.items():
        for record in rows:
            text = target_text(record, "theorem")
            solution = parse(text, BANK)
            assert not solution.problems, (record.id, solution.problems)
            checks = check_solution(solution, BANK)
            assert all(c.status == "verified" for c in checks), (record.id, [c.reason for c in checks])
            assert solution.steps[-1].exec.rpartition("=")[2].strip() == record.answer
            assert text.endswith(f"Answer: {record.answer} ({'ABCD'[record.answer_index]})")


def test_gold_is_among_four_distinct_choices_exactly_once(run):
    _, _, records = run
    positions = Counter()
    for rows in records.values():
        for record in rows:
            assert len(record.choices) == 4 and len(set(record.choices)) == 4, record.choices
            assert record.choices.count(record.answer) == 1
            assert record.choices[record.answer_index] == record.answer
            positions[record.answer_index] += 1
    assert len(positions) == 4   # the gold letter is shuffled, not always A


def test_three_targets_share_the_answer_line_and_plain_has_no_theorem_names(run):
    _, _, records = run
    for record in records["train"][:50]:
        theorem, plain, answer = (target_text(record, k) for k in ("theorem", "plain", "answer"))
        assert theorem.splitlines()[-1] == plain.splitlines()[-1] == answer
        assert "Theorem:" not in plain and "Map:" not in plain and "Cond:" not in plain
        for step in record.steps:
            assert step["theorem"] not in plain
            assert step["exec"].partition("=>")[2].strip() in plain   # same results, same values
        assert record.solution == plain.rpartition("\nAnswer:")[0]


def test_records_images_and_manifest(run):
    out, manifest, records = run
    assert manifest["seed"] == 7 and manifest["version"]
    for split, rows in records.items():
        assert manifest["splits"][split]["count"] == len(rows) == split_sizes(300, 0.1)[split]
        assert sum(manifest["splits"][split]["families"].values()) == len(rows)
        for record in rows[:40]:
            assert record.source == "synthetic" and record.split == split
            image = Image.open(out / record.image)
            assert 100 <= max(image.size) <= 360 and min(image.size) >= 40, image.size
            assert image.getextrema()[0] < 100 and image.getpixel((0, 0)) == 255   # dark strokes on white


def test_every_family_appears_in_every_split_where_it_applies(run):
    _, manifest, _ = run
    for split in SPLITS:
        expected = {f.name for f in families_for(split)}
        assert set(manifest["splits"][split]["families"]) == expected, split
    assert {f.name for f in families_for("train")} == set(FAMILIES)
    assert {f.name for f in families_for("test_numbers")} == set(FAMILIES)
    assert len(families_for("test_compose")) >= 10


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(n=40, seed=3, out=a, test_fraction=0.1, progress=False)
    generate(n=40, seed=3, out=b, test_fraction=0.1, progress=False, workers=2)
    generate(n=40, seed=4, out=c, test_fraction=0.1, progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 40 + len(SPLITS) + 1
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "train.jsonl").read_bytes() != (c / "train.jsonl").read_bytes()


def test_cli_writes_counts_and_rejects_bad_sizes(tmp_path, capsys):
    assert cli_main(["--n", "20", "--seed", "1", "--out", str(tmp_path / "run"), "--quiet", "--test-fraction", "0.1"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == split_sizes(20, 0.1) and sum(counts.values()) == 20
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["n"] == 20
    assert cli_main(["--n", "3", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "too small" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- held-out splits

def test_split_plans_are_disjoint_by_construction():
    check_disjoint()
    assert not set(TRAIN_LETTERS) & set(SURFACE_LETTERS)
    assert not set(PLANS["train"].phrasings) & set(SURFACE_PHRASINGS)
    assert not set(PLANS["train"].styles) & set(SURFACE_STYLES)
    assert len(PHRASINGS) - len(SURFACE_PHRASINGS) >= 5


def test_no_held_out_surface_appears_in_train(plan_sample):
    train, surface = plan_sample["train"], plan_sample["test_surface"]
    train_letters = set().union(*(letters_of(r) for r in train))
    assert train_letters <= set(TRAIN_LETTERS)
    assert {r.meta["phrasing_id"] for r in train} == set(PLANS["train"].phrasings)
    assert {r.meta["style_id"] for r in train} == set(PLANS["train"].styles)
    for record in surface:
        assert letters_of(record) <= set(SURFACE_LETTERS) and record.meta["phrasing_id"] in SURFACE_PHRASINGS
        assert record.meta["style_id"] in SURFACE_STYLES
        # every point letter in the question is held out (the centre keeps its conventional name)
        points = set(re.findall(r"(?<![A-Za-z])[A-Z](?=[A-Z∠ ,.=)]|$)", record.question.split(" ", 1)[1]))
        assert not (points - {CENTRE}) & set(TRAIN_LETTERS), record.question
    train_questions = {PHRASINGS[i].split("{")[0] for i in PLANS["train"].phrasings}
    assert all(not r.question.startswith(tuple(p for p in train_questions if p)) for r in surface)


def test_no_held_out_composition_appears_in_train(plan_sample):
    train_seen = {tuple(r.meta["chain"]) for r in plan_sample["train"]}
    compose = {tuple(r.meta["chain"]) for r in plan_sample["test_compose"]}
    assert train_seen <= train_chains()
    assert compose and not compose & train_seen
    seen_theorems = {t for chain in train_seen for t in chain}
    assert all(set(chain) <= seen_theorems for chain in compose)   # seen theorems, unseen combination
    assert {len(c) for c in compose} >= {2, 3}


def test_no_held_out_value_range_appears_in_train(plan_sample):
    def inside(value, bounds):
        return bounds[0] <= value <= bounds[1]

    for record in plan_sample["train"] + plan_sample["test_iid"]:
        ranges = RANGES.get(record.meta["family"], {})
        for name, value in record.meta["values"].items():
            if name in ranges:
                assert inside(value, ranges[name][0]), (record.id, name, value, ranges[name])
        assert not record.meta["out_of_range"]
    for record in plan_sample["test_numbers"]:
        ranges = RANGES[record.meta["family"]]
        (name,) = record.meta["out_of_range"]
        train_range, out_range = ranges[name]
        value = record.meta["values"][name]
        assert inside(value, out_range) and not inside(value, train_range), (record.id, name, value)


def test_test_iid_repeats_a_train_question_only_when_flagged(run):
    _, manifest, records = run
    train = {r.question for r in records["train"]}
    for record in records["test_iid"]:
        assert (record.question in train) == record.meta["question_in_train"], record.question
        if record.meta["question_in_train"]:   # only families with few distinct questions run out
            assert record.meta["family"] in ("polygon_angles", "equilateral_triangle", "pythagorean_converse")
    assert manifest["splits"]["test_iid"]["question_in_train"] == sum(r.meta["question_in_train"]
                                                                      for r in records["test_iid"])
    assert all(not r.meta["question_in_train"] for split in SPLITS if split != "test_iid" for r in records[split])


def test_emitted_targets_check_against_the_validated_seed_bank_too(run):
    """The contract with theorem_bank: the ids, roles and relations the curriculum uses are the seeds'."""
    from theorem_bank import load_seeds

    seeds = {t["id"]: t for t in load_seeds()}

    class SeedBank:
        def get(self, theorem_id):
            return seeds.get(theorem_id)

    _, _, records = run
    for record in records["test_compose"] + records["test_numbers"]:
        text = target_text(record, "theorem", bank=SeedBank())
        assert [c.status for c in check_solution(parse(text), SeedBank())] == ["verified"] * len(record.steps)
        for step in record.steps:
            assert seeds[step["theorem"]]["roles"].keys() >= {e.split("=")[0].strip() for e in step["map"].split(";")}


def test_the_generator_refuses_a_target_the_checker_does_not_verify(monkeypatch):
    import training.synthetic.generate as generate_module
    from training.synthetic.families import FAMILIES, Family

    honest = FAMILIES["linear_pair"]

    def off_by_one(rng, pick, chain):
        draft = honest.build(rng, pick, chain)
        draft.steps[-1]["exec"] = draft.steps[-1]["exec"].replace("=> ∠BOC = ", "=> ∠BOC = 1")   # 130° -> 1130°
        return draft

    monkeypatch.setitem(FAMILIES, "linear_pair", Family("linear_pair", honest.chains, honest.held_out, off_by_one))
    index = [f.name for f in families_for("train")].index("linear_pair")
    with pytest.raises(generate_module.GenerationError, match="is wrong|concludes"):
        make_problem("train", index, 0, draw=False)
    assert make_problem("train", index + 1, 0, draw=False).record.meta["family"] != "linear_pair"
