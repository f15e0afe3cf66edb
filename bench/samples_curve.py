"""The tutor's answer for N = 1..K chains, from `evaluate.py run --samples K` folders: sample 0 is the greedy chain
(what N=1 serves), samples 1..K-1 were drawn together, so the first k of them are a fair draw of N=k. Each prefix
is selected exactly as the app and the evaluator select (model.selection) and graded as the evaluator grades the
tutor's answer. Prints one JSON line: per split and N, accuracy with its 95% Wilson interval, and the latency.

    python bench/samples_curve.py runs/eval/n4-test_iid runs/eval/n4-test_compose ...
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from model.grounding import problem_context
    from model.selection import select
    from theorem_bank import open_bank
    from training.evaluation.runner import read_predictions
    from training.evaluation.stats import wilson_interval

    bank = open_bank(dense=False)
    report = {}
    for folder in map(Path, argv):
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))["settings"]
        data = Path(run["data"])
        lines, _ = read_predictions(folder / "predictions.jsonl")
        lines = [line for line in lines if "samples" in line]
        if not lines:
            continue
        split = lines[0]["split"]
        records = {}
        for raw in (data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            item = json.loads(raw)
            records[item["id"]] = item
        k_max = min(len(line["samples"]) for line in lines)
        figures = {}
        for k in range(1, k_max + 1):
            correct = high = high_right = 0
            for line in lines:
                record = records[line["id"]]
                choices = record["choices"]
                context = problem_context(record["question"], choices, (record.get("meta") or {}).get("letters"))
                selection = select(line["samples"][:k], context, choices, bank)
                right = selection.chosen.letter == "ABCD"[record["answer_index"]]
                correct += right
                high += selection.confidence == "high"
                high_right += selection.confidence == "high" and right
            low, up = wilson_interval(correct, len(lines))
            figures[f"N={k}"] = {"accuracy": round(correct / len(lines), 3), "ci95": [round(low, 3), round(up, 3)],
                                 "high_confidence": high, "high_and_right": high_right}
        latency = sum(line["latency_s"] for line in lines) / len(lines)
        report[split] = {"n": len(lines), **figures, f"latency_s_per_problem_N={k_max}": round(latency, 2)}
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
