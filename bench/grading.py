"""Answer extraction and grading on real data; prints one JSON line.

    python bench/grading.py [--data PATH]

- MATH-500: the answer extracted from each reference solution, graded against the `answer` field
  (agreement should be >= 99%; disagreements go to stderr). Also reported: the agreement when
  math-verify alone decides, without the equal-text shortcut.
- GeoQA test: the gold answer text mapped to a choice letter must equal `answer_label` (all 754).
Data: THEOREM_TUTOR_DATA or <repo>/../shared/data.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.answers import _math_verify_equal, extract_answer, grade  # noqa: E402


def data_dir(override: str | None) -> Path:
    return Path(override or os.environ.get("THEOREM_TUTOR_DATA") or REPO.parent / "shared" / "data")


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def math500(path: Path) -> dict:
    rows = read_jsonl(path)
    agree, by_math_verify, disagreements = 0, 0, []
    for row in rows:
        extracted = extract_answer(row["solution"])
        if grade(extracted, row["answer"]):
            agree += 1
        else:
            disagreements.append((row["unique_id"], extracted.value, row["answer"]))
        # the same pairs judged by math-verify alone (no text shortcut): shows the symbolic path works
        by_math_verify += bool(extracted.value and _math_verify_equal(row["answer"], extracted.value))
    for uid, got, want in disagreements:
        print(f"MATH-500 disagreement {uid}: extracted {got!r}, answer {want!r}", file=sys.stderr)
    return {"math500_items": len(rows), "math500_agreement": round(agree / len(rows), 4),
            "math500_disagreements": len(disagreements),
            "math500_agreement_math_verify_only": round(by_math_verify / len(rows), 4)}


def geoqa(path: Path) -> dict:
    rows = read_jsonl(path)
    right, misses = 0, []
    for row in rows:
        letter = extract_answer(row["answer"], row["choices"]).letter
        if letter == row["answer_label"]:
            right += 1
        else:
            misses.append((row["test_index"], row["answer"], row["choices"], row["answer_label"], letter))
    for index, answer, choices, label, letter in misses:
        print(f"GeoQA miss {index}: answer {answer!r} choices {choices} gold {label} got {letter}", file=sys.stderr)
    return {"geoqa_items": len(rows), "geoqa_letter_accuracy": round(right / len(rows), 4), "geoqa_misses": len(misses)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder holding math/ and geoqa_test_en/ (default: ../shared/data)")
    args = parser.parse_args()
    root = data_dir(args.data)
    math_file, geoqa_file = root / "math" / "math500_test.jsonl", root / "geoqa_test_en" / "geoqa_test.jsonl"
    if not math_file.exists() or not geoqa_file.exists():
        print(json.dumps({"skipped": f"data not found under {root} (set THEOREM_TUTOR_DATA or pass --data)"}))
        return 0
    start = time.perf_counter()
    figures = {**math500(math_file), **geoqa(geoqa_file)}
    figures["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
