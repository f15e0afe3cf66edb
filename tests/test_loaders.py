"""Loaders on fixtures written in the real formats (tests/fixtures/data), and on the real data when present."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from training.loaders import BadRecords, last_boxed, load_formalgeo, load_geoqa, load_hf, load_math, load_records
from training.records import ProblemRecord, RecordError, write_records

FIXTURES = Path(__file__).parent / "fixtures" / "data"
GEOQA = FIXTURES / "geoqa"


def _key(r: ProblemRecord):
    return r.id, r.question, r.answer


# --- GeoQA --------------------------------------------------------------------------------------------

def test_geoqa_three_formats_agree():
    merged = list(load_geoqa(GEOQA))
    gllava = list(load_geoqa(GEOQA / "upstream" / "G-LLaVA_test_questions.jsonl"))
    r1v = list(load_geoqa(GEOQA / "upstream" / "R1-V_geoqa_test_prompts.jsonl"))
    assert len(merged) == len(gllava) == len(r1v) == 3
    assert [_key(r) for r in merged] == [_key(r) for r in gllava] == [_key(r) for r in r1v]
    # choices and gold label agree between the two formats that have them
    assert [(r.choices, r.answer_index) for r in merged] == [(r.choices, r.answer_index) for r in gllava]
    assert merged[0].choices[merged[0].answer_index] == merged[0].answer == "115°"
    assert r1v[0].choices is None
    # the merged file's image path resolves next to it; the others name Geo170K images we were not given
    assert merged[0].image and Path(merged[0].image).is_file() and merged[1].image is None
    assert gllava[0].image is None


def test_geoqa_image_root_missing_image_is_an_error_naming_the_record(tmp_path):
    with pytest.raises(RecordError) as err:
        list(load_geoqa(GEOQA / "upstream" / "R1-V_geoqa_test_prompts.jsonl", image_root=tmp_path))
    message = str(err.value)
    assert "R1-V_geoqa_test_prompts.jsonl:1" in message and "geoqa-test-0" in message and "'image'" in message
    ok = list(load_geoqa(GEOQA / "upstream" / "R1-V_geoqa_test_prompts.jsonl", image_root=tmp_path, text_only=True))
    assert len(ok) == 3


def test_geoqa_bad_record_stops_or_is_skipped(tmp_path):
    lines = (GEOQA / "geoqa_test.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[1])
    row["answer_label"] = "D"          # points at another choice than the answer text
    lines[1] = json.dumps(row, ensure_ascii=False)
    lines.insert(2, "{not json")
    bad_file = tmp_path / "geoqa_test.jsonl"
    bad_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "images").mkdir()
    shutil.copy(GEOQA / "images" / "0.png", tmp_path / "images" / "0.png")

    with pytest.raises(RecordError) as err:
        list(load_geoqa(bad_file))
    assert f"{bad_file}:2" in str(err.value) and "answer_label" in str(err.value)

    rejects = tmp_path / "rejects.jsonl"
    bad = BadRecords(skip=True, path=rejects)
    records = list(load_geoqa(bad_file, bad=bad))
    assert [r.id for r in records] == ["geoqa-test-0", "geoqa-test-2"]
    assert bad.count == 2
    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [w["field"] for w in written] == ["answer_label", None]
    assert written[1]["where"].endswith(":3") and "not valid JSON" in written[1]["reason"]


def test_geoqa_gllava_without_answers_file_says_what_to_do(tmp_path):
    questions = tmp_path / "G-LLaVA_test_questions.jsonl"
    shutil.copy(GEOQA / "upstream" / "G-LLaVA_test_questions.jsonl", questions)
    with pytest.raises(FileNotFoundError, match="answers"):
        list(load_geoqa(questions))


# --- FormalGeo7k --------------------------------------------------------------------------------------

def test_formalgeo_folder_and_jsonl_give_the_same_records():
    folder = list(load_formalgeo(FIXTURES / "formalgeo", text_only=True))
    lines = list(load_formalgeo(FIXTURES / "formalgeo" / "problems_all.jsonl", text_only=True))
    assert [r.to_dict() for r in folder] == [r.to_dict() for r in lines]
    assert [(r.id, r.split, r.meta["origin"]) for r in folder] == [
        ("formalgeo7k-101", "test", "GeoQA"), ("formalgeo7k-102", "test", "Geometry3k"),
        ("formalgeo7k-103", "train", "GeoQA")]
    assert folder[0].meta["theorem_seqs"][0] == "triangle_property_angle_sum(1,PQR)"
    assert folder[1].answer == "7" and folder[0].image is None


def test_formalgeo_test_split_has_its_diagrams_and_a_missing_one_is_named():
    test = list(load_formalgeo(FIXTURES / "formalgeo", split="test"))
    assert [r.id for r in test] == ["formalgeo7k-101", "formalgeo7k-102"]
    assert all(Path(r.image).is_file() for r in test)
    with pytest.raises(RecordError) as err:
        list(load_formalgeo(FIXTURES / "formalgeo"))     # problem 103 (train) has no diagram
    assert "formalgeo7k-103" in str(err.value) and "103.png" in str(err.value) and "--text-only" in str(err.value)


def test_formalgeo_bad_record_names_file_and_field(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "formalgeo" / "problems_all.jsonl").read_text().splitlines()]
    del rows[1]["goal_cdl"]
    path = tmp_path / "problems_all.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(RecordError) as err:
        list(load_formalgeo(path, text_only=True))
    assert f"{path}:2" in str(err.value) and "'goal_cdl'" in str(err.value) and "formalgeo7k-102" in str(err.value)
    bad = BadRecords(skip=True)
    assert len(list(load_formalgeo(path, text_only=True, bad=bad))) == 2 and bad.count == 1


# --- MATH ---------------------------------------------------------------------------------------------

def test_math_answer_from_field_or_last_box():
    full = list(load_math(FIXTURES / "math" / "test.jsonl"))
    assert [r.answer for r in full] == ["5", "\\frac{3}{4}", "5"]
    assert full[1].meta == {"subject": "Algebra", "level": 2, "idx": 1} and full[1].knowledge_points == ["Algebra"]
    assert full[2].meta["level"] is None           # upstream "Level ?" is kept as unknown
    m500 = list(load_math(FIXTURES / "math" / "math500_test.jsonl"))
    assert [r.id for r in m500] == ["test/prealgebra/1.json", "test/algebra/2.json"]
    assert m500[0].meta["level"] == 1 and m500[0].solution.endswith("$.")


def test_last_boxed_handles_nesting_and_bare_form():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{1}{x^{2}}}.") == r"\frac{1}{x^{2}}"
    assert last_boxed(r"so \boxed 7.") == "7"
    assert last_boxed(r"\fbox{a{b}c}") == "a{b}c"
    assert last_boxed("no box here") is None


def test_math_record_without_answer_is_bad(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"problem": "x?", "solution": "no box", "idx": 4}) + "\n")
    with pytest.raises(RecordError, match=r"m.jsonl:1.*'solution'"):
        list(load_math(path))


# --- our records and Hugging Face datasets ------------------------------------------------------------

def test_records_roundtrip_and_bad_line(tmp_path):
    records = list(load_geoqa(GEOQA))
    path = tmp_path / "r.jsonl"
    write_records(records, path)
    assert [r.to_dict() for r in load_records(path)] == [r.to_dict() for r in records]
    with path.open("a") as fh:
        fh.write(json.dumps({"id": "x", "source": "s", "split": "t", "question": "q", "answer": "a", "colour": 1}) + "\n")
    with pytest.raises(RecordError, match=r"r.jsonl:4.*'colour'"):
        list(load_records(path))
    bad = BadRecords(skip=True)
    assert len(list(load_records(path, bad=bad))) == 3 and bad.count == 1


def _tiny_hf_dataset():
    import datasets
    from PIL import Image

    pictures = [Image.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(3)]
    features = datasets.Features({"problem": datasets.Value("string"), "gt": datasets.Value("string"),
                                  "options": datasets.Sequence(datasets.Value("string")), "img": datasets.Image()})
    return datasets.Dataset.from_dict({"problem": ["q0", "q1", ""], "gt": ["1", "2", "3"],
                                       "options": [["1", "2"], ["2", "3"], ["3", "4"]], "img": pictures},
                                      features=features)


def test_hf_saved_dataset_and_parquet_with_column_mapping(tmp_path):
    data = _tiny_hf_dataset()
    data.save_to_disk(str(tmp_path / "saved"))
    data.to_parquet(str(tmp_path / "data.parquet"))
    columns = {"question": "problem", "answer": "gt", "choices": "options", "image": "img"}
    for source in (tmp_path / "saved", tmp_path / "data.parquet"):
        bad = BadRecords(skip=True)
        records = list(load_hf(source, columns=columns, image_dir=tmp_path / "images", bad=bad))
        assert [(r.question, r.answer, r.choices, r.answer_index) for r in records] == [
            ("q0", "1", ["1", "2"], 0), ("q1", "2", ["2", "3"], 0)]
        assert bad.count == 1 and bad.rejected[0]["field"] == "question"
        from PIL import Image

        assert Image.open(records[1].image).getpixel((0, 0)) == (60, 0, 0)   # the row's own picture
    with pytest.raises(ValueError, match="--column question=COL"):
        list(load_hf(tmp_path / "saved", columns={}))


# --- the real data ------------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_real_geoqa_formats_agree(shared_data):
    root = shared_data / "geoqa_test_en"
    merged = list(load_geoqa(root))
    gllava = list(load_geoqa(root / "upstream" / "G-LLaVA_test_questions.jsonl"))
    r1v = list(load_geoqa(root / "upstream" / "R1-V_geoqa_test_prompts.jsonl"))
    assert len(merged) == len(gllava) == len(r1v) == 754
    assert [_key(r) for r in merged] == [_key(r) for r in gllava] == [_key(r) for r in r1v]
    assert sum(r.image is not None for r in merged) == 235


@pytest.mark.shared_data
def test_real_formalgeo_and_math_counts(shared_data):
    root = shared_data / "formalgeo7k_v1"
    everything = list(load_formalgeo(root, text_only=True))
    assert len(everything) == 6981
    test = list(load_formalgeo(root, split="test"))
    assert len(test) == 1396 and all(r.image for r in test)
    assert len(list(load_math(shared_data / "math" / "test.jsonl"))) == 5000
    assert len(list(load_math(shared_data / "math" / "math500_test.jsonl"))) == 500
