"""The problem record: validation errors name where and which field; JSONL round-trips."""
import json

import pytest

from training.records import ProblemRecord, RecordError, read_records, write_records


def good() -> dict:
    return {"id": "p1", "source": "fixture", "split": "test", "question": "Find ∠C.", "answer": "70°",
            "choices": ["70°", "110°", "20°", "50°"], "answer_index": 0,
            "steps": [{"theorem": "triangle_angle_sum", "cond": "△ABC", "map": "angle1 = ∠A = 50°", "exec": "x"}]}


def test_round_trip_through_jsonl(tmp_path):
    path = tmp_path / "records.jsonl"
    assert write_records([ProblemRecord.from_dict(good())], path) == 1
    [record] = list(read_records(path))
    assert record.to_dict() == ProblemRecord.from_dict(good()).to_dict()
    assert not (tmp_path / "records.jsonl.tmp").exists()


@pytest.mark.parametrize("change, field", [
    ({"question": ""}, "question"),
    ({"answer_index": 7}, "answer_index"),
    ({"choices": "A"}, "choices"),
    ({"steps": [{"cond": "no theorem"}]}, "steps"),
    ({"colour": "red"}, "colour"),
    ({"numbers": ["x"]}, "numbers"),
])
def test_bad_field_is_named_with_file_and_line(tmp_path, change, field):
    path = tmp_path / "bad.jsonl"
    lines = [good(), {**good(), "id": "p2", **change}]
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    with pytest.raises(RecordError) as err:
        list(read_records(path))
    message = str(err.value)
    assert f"{path}:2" in message and field in message
    assert err.value.field_name == field


def test_broken_json_names_the_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(good()) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"broken.jsonl:2: not valid JSON"):
        list(read_records(path))
