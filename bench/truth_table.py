"""What the answer box shows, before (main's code) and after (verifier-guided selection), per problem: the trusted
value, the letter shown, the step badges, and the time, for the 28 gallery examples and the 36 unseen problems of
tests/fixtures/unseen_geoqa. Prints one JSON line of totals; writes the table to --out (Markdown and JSONL).

    python bench/truth_table.py --samples 4 --out runs/truth_table            # after; greedy texts saved
    PYTHONPATH=/tmp/main python bench/truth_table.py --before runs/truth_table   # main's rendering of those texts

The greedy chain is what main's app streams and the first of the N chains here, so "before" renders the same text
with main's code: its letter is the model's own, its value main's execution of the chain.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNSEEN = REPO / "tests" / "fixtures" / "unseen_geoqa"


def load_problems() -> list[dict]:
    from app.examples import load_gallery

    rows = [{"set": "gallery", "id": ex.family, "question": ex.question, "choices": ex.choices, "answer": ex.answer,
             "image": ex.image} for ex in load_gallery()]
    for line in (UNSEEN / "problems.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        rows.append({"set": "unseen", "id": item["id"] + "-" + item["kind"], "question": item["question"],
                     "choices": item["choices"], "answer": item["answer"], "image": str(UNSEEN / item["image"])})
    return rows


def gold_letter(row) -> str:
    return "ABCD"[row["choices"].index(row["answer"])]


def run_after(args) -> None:
    from app import handlers, render, serving
    from model.answers import extract_answer
    from theorem_bank import open_bank

    import torch

    torch.set_num_threads(1)  # a tiny model on a shared 2-core CPU: one thread is ~10x faster than two contended
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tutor = serving.open_tutor(serving.ServingConfig(samples=args.samples, max_new_tokens=args.max_new_tokens,
                                                     device="cpu"))
    bank = open_bank(dense=False)
    problems = load_problems()[: args.limit] if args.limit else load_problems()
    rows = []
    for row in problems:
        problem = handlers.make_problem(row["image"], row["question"], row["choices"])
        began = time.perf_counter()
        greedy = "".join(tutor.stream(problem.question, problem.choices, problem.picture, bank))
        greedy_s = time.perf_counter() - began
        more = tutor.sample(problem.question, problem.choices, problem.picture, bank, args.samples - 1)
        context = handlers.context_for(problem.to_state())
        html, view, selection = handlers.answer_for([greedy, *more], bank, context, problem.choices)
        after_s = time.perf_counter() - began
        chosen = selection.chosen
        model = extract_answer(chosen.text, choices=problem.choices)
        rows.append({**{k: row[k] for k in ("set", "id", "answer")}, "gold_letter": gold_letter(row),
                     "greedy": greedy, "samples": more, "greedy_s": round(greedy_s, 2),
                     "after": {"value": view["value"], "letter": view["letter"], "confidence": view["confidence"],
                               "agree": view["agree"], "total": view["total"], "chosen": view["chosen"],
                               "badges": chosen.badges(), "model_letter": model.letter,
                               "correct": view["letter"] == gold_letter(row), "time_s": round(after_s, 2),
                               "letter_contradicts": _contradicts(view["value"], view["letter"], row["choices"])}})
        print(json.dumps({"id": row["id"], **rows[-1]["after"]}), file=sys.stderr)
    (out / "after.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    _ = render  # the answer box above is render.answer_box's
    print(json.dumps(_totals(rows, "after")))


def run_before(args) -> None:
    """Main's answer box for the saved greedy texts (run with main's tree first on PYTHONPATH)."""
    from app import handlers
    from model.answers import extract_answer
    from model.checker import check_solution
    from model.solution_format import parse
    from theorem_bank import open_bank

    bank = open_bank(dense=False)
    out = Path(args.before)
    problems = {p["id"]: p for p in load_problems()}
    rows = [json.loads(line) for line in (out / "after.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        choices = problems[row["id"]]["choices"]
        began = time.perf_counter()
        text = row["greedy"]
        handlers.render_output(text, bank, choices, final=True)  # what main renders, timed with the generation
        solution = parse(text)
        extracted = extract_answer(text, choices=choices)
        executed = handlers._executed_answer(solution, bank, choices, extracted.value)
        checks = check_solution(solution, bank=bank) if solution.steps else []
        value = executed[0] if executed else None
        letter = extracted.letter  # main's box printed the model's own letter as "choice X"
        row["before"] = {"value": value, "letter": letter, "badges": [c.status for c in checks],
                         "correct": letter == row["gold_letter"], "executed_letter": executed[1] if executed else None,
                         "time_s": round(row["greedy_s"] + time.perf_counter() - began, 2),
                         "letter_contradicts": _contradicts(value, letter, choices),
                         "green": bool(checks) and all(c.status == "verified" for c in checks)}
    (out / "table.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (out / "table.md").write_text(_markdown(rows, problems), encoding="utf-8")
    print(json.dumps({"before": _totals(rows, "before"), "after": _totals(rows, "after")}))


def _contradicts(value, letter, choices) -> bool:
    """A letter is shown whose choice is not the shown value."""
    if letter is None or value is None:
        return False
    from model.answers import choice_map, match_choice

    try:
        return match_choice(str(value), choice_map(choices)) != letter
    except Exception:  # noqa: BLE001
        return True


def _totals(rows, side) -> dict:
    out = {}
    for name in ("gallery", "unseen"):
        mine = [r[side] for r in rows if r["set"] == name]
        if not mine:
            continue
        out[name] = {"n": len(mine), "correct": sum(r["correct"] for r in mine),
                     "letter_contradicts_value": sum(r["letter_contradicts"] for r in mine),
                     "mean_time_s": round(sum(r["time_s"] for r in mine) / len(mine), 2)}
        if side == "after":
            out[name]["high"] = sum(r["confidence"] == "high" for r in mine)
            out[name]["high_and_wrong"] = sum(r["confidence"] == "high" and not r["correct"] for r in mine)
        else:
            out[name]["green_and_wrong"] = sum(r["green"] and not r["correct"] for r in mine)
    return out


def _badges(badges) -> str:
    marks = {"verified": "✓", "wrong": "✗", "unverifiable": "?", "ungrounded": "ng"}
    return " ".join(marks.get(b, b) for b in badges) or "—"


def _markdown(rows, problems) -> str:
    lines = ["| set | problem | gold | before: value / letter / badges / s | after: value / letter / badges / "
             "confidence / agree / s |", "|---|---|---|---|---|"]
    for r in rows:
        b, a = r["before"], r["after"]
        bl = f"{b['letter'] or '—'}{' ≠value' if b['letter_contradicts'] else ''}{' ✓' if b['correct'] else ''}"
        al = f"{a['letter'] or 'no match'}{' ✓' if a['correct'] else ''}"
        lines.append(f"| {r['set']} | {r['id']} | {r['answer']} ({r['gold_letter']}) | {b['value']} / {bl} / "
                     f"{_badges(b['badges'])} / {b['time_s']} | {a['value']} / {al} / {_badges(a['badges'])} / "
                     f"{a['confidence']} / {a['agree']} of {a['total']} / {a['time_s']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--out", default="runs/truth_table")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--before", default=None, help="render the saved greedy texts of this folder with main's code")
    args = parser.parse_args()
    if args.before:
        run_before(args)
    else:
        run_after(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
