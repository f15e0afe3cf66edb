"""`python -m training.data build|stats`: matched targets, choice shuffling, prompt pool, rejects accounting."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data.__main__ import main
from training.data.diversity import INSTRUCTIONS, pick_instruction, shuffle_choices
from training.loaders import load_geoqa, load_records
from training.targets import answer_line

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def _build(tmp_path, name, *args) -> tuple[list, dict]:
    out = tmp_path / f"{name}.jsonl"
    assert main(["build", *args, "--out", str(out), "--quiet", "--workers", "1"]) == 0
    return list(load_records(out)), out


def test_theorem_plain_answer_targets_share_problems_images_and_answer_line(tmp_path, capsys):
    theorem, theorem_file = _build(tmp_path, "theorem", "--source", "formalgeo7k", "--path",
                                   str(FIXTURES / "formalgeo"), "--split", "test", "--target", "theorem")
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["written"] == 2 and summary["by_origin"]["GeoQA"] == {"total": 1, "built": 1, "steps_verified": 2,
                                                                        "steps": 2}
    plain, _ = _build(tmp_path, "plain", "--source", "records", "--path", str(theorem_file), "--target", "plain")
    answer, _ = _build(tmp_path, "answer", "--source", "records", "--path", str(theorem_file), "--target", "answer")
    assert [r.id for r in theorem] == [r.id for r in plain] == [r.id for r in answer]
    for t, p, a in zip(theorem, plain, answer):
        assert t.question == p.question == a.question and t.image == p.image == a.image and t.image
        last = {text.meta["target"].splitlines()[-1] for text in (t, p, a)}
        assert last == {answer_line(t)}
        assert t.meta["target"].startswith("Theorem: ") and "Theorem:" not in p.meta["target"]
        assert "Map:" not in p.meta["target"] and a.meta["target"] == answer_line(t)
    assert "∠RTS = 120°" in plain[0].meta["target"]

    capsys.readouterr()
    assert main(["stats", str(theorem_file)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["records"] == 2 and stats["steps_per_problem"]["max"] == 2
    assert stats["top_theorems"]["triangle_angle_sum"] == 1 and stats["step_status"] == {"verified": 3}


def test_choice_shuffling_keeps_the_gold_answer_and_is_the_same_for_every_kind(tmp_path):
    original = {r.id: r for r in load_geoqa(FIXTURES / "geoqa")}
    kinds = {}
    for kind in ("answer", "theorem"):
        records, out = _build(tmp_path, kind, "--source", "geoqa", "--path", str(FIXTURES / "geoqa"),
                              "--target", kind, "--shuffle-choices", "--instructions", "--seed", "3", "--skip-bad")
        kinds[kind] = records
    answers = kinds["answer"]
    assert len(answers) == 3 and kinds["theorem"] == []         # GeoQA has no steps: no theorem target
    rejects = [json.loads(line) for line in (tmp_path / "theorem.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 3 and all("steps" in r["reason"] for r in rejects)
    moved = 0
    for record in answers:
        gold = original[record.id]
        assert record.choices[record.answer_index] == gold.answer == record.answer
        assert sorted(record.choices) == sorted(gold.choices)
        assert record.meta["target"].endswith(f"({'ABCD'[record.answer_index]})")
        assert record.meta["instruction"] in INSTRUCTIONS
        moved += record.choices != gold.choices
    assert moved >= 1


def test_prompt_pool_and_shuffle_depend_on_the_record_only():
    assert len(set(INSTRUCTIONS)) >= 10
    records = list(load_geoqa(FIXTURES / "geoqa"))
    assert [pick_instruction(r, 0) for r in records] == [pick_instruction(r, 0) for r in records]
    shuffled = [shuffle_choices(r, 1) for r in records]
    assert [s.choices for s in shuffled] == [shuffle_choices(r, 1).choices for r in records]
    many = {tuple(shuffle_choices(records[0], seed).choices) for seed in range(12)}
    assert len(many) > 1


def test_bad_input_stops_with_the_place_or_is_counted(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    good = (FIXTURES / "math" / "test.jsonl").read_text().splitlines()
    bad.write_text("\n".join([good[0], '{"problem": "no answer", "solution": "none"}', good[1]]) + "\n")
    out = tmp_path / "m.jsonl"
    assert main(["build", "--source", "math", "--path", str(bad), "--target", "plain", "--out", str(out), "--quiet"]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert main(["build", "--source", "math", "--path", str(bad), "--target", "plain", "--out", str(out), "--quiet",
                 "--skip-bad"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 2 and summary["rejects_by_reason"] == {"bad record": 1}
    assert [r.meta["target"].splitlines()[-1] for r in load_records(out)] == ["Answer: 5", "Answer: \\frac{3}{4}"]
