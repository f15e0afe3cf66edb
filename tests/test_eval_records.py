"""evaluate.py run --benchmark records: a user's own JSONL of problem records, graded like any benchmark; a bad
record is one clear line and exit code 2, not a traceback."""
from __future__ import annotations

import json
from pathlib import Path

import evaluate
from training.evaluation.benchmarks import load_benchmark


def record(id_: str, question: str, answer: str, choices=None, answer_index=None, image=None) -> dict:
    return {"id": id_, "source": "mine", "split": "test", "image": image, "question": question, "choices": choices,
            "answer": answer, "answer_index": answer_index, "knowledge_points": [], "program": None,
            "numbers": None, "solution": None, "steps": None, "meta": {}}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_records_benchmark_grades_a_users_own_file(tmp_path):
    data = write_jsonl(tmp_path / "mine.jsonl", [
        record("p1", "In triangle ABC, ∠A = 50° and ∠B = 60°. Find ∠C.", "70°", ["70°", "80°", "60°", "50°"], 0,
               image="diagrams/p1.png"),
        record("p2", "AB ∥ CD and ∠EGB = 40°. Find ∠GHD.", "40°"),
    ])
    loaded = load_benchmark("records", data)
    assert [r.id for r in loaded] == ["p1", "p2"]
    assert loaded[0].image == str((tmp_path / "diagrams" / "p1.png").resolve())  # relative to the file's folder

    outputs = write_jsonl(tmp_path / "outputs.jsonl", [{"id": "p1", "output": "Answer: 70° (A)"},
                                                       {"id": "p2", "output": "Answer: 30°"}])
    out = tmp_path / "run"
    assert evaluate.main(["run", "--benchmark", "records", "--data", str(data), "--backend", "replay",
                          "--outputs", str(outputs), "--out", str(out), "--text-only", "--quiet"]) == 0
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    graded = {line["id"]: (line["mode"], line["correct"]) for line in lines}
    assert graded == {"p1": ("choice", True), "p2": ("direct", False)}


def test_a_bad_record_is_one_line_and_exit_code_2(tmp_path, capsys):
    data = write_jsonl(tmp_path / "bad.jsonl", [record("ok", "Find ∠C.", "70°"), {"id": "broken", "question": 5}])
    code = evaluate.main(["run", "--benchmark", "records", "--data", str(data), "--backend", "replay",
                          "--outputs", str(data), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{data}:2" in err and "'broken'" in err and "field" in err
