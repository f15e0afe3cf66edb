"""Tutor latency on CPU: time to the first step card and to the full solution, median over 10 requests.

    python bench/app_latency.py [--model DIR] [--requests 10] [--threads N]

Runs the app's own solve handler (retrieval, streaming generation, parsing, checking, rendering) on the gallery
examples with the embedded demo model (or --model). Prints ONE JSON line. Targets: <= 2 s to the first step
card, <= 10 s in total.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class GoldReplay:
    """Streams the gold solution word by word with no delay: what remains is the app's own latency."""

    identity = {"model": "gold replay (no model)", "demo": False}

    def __init__(self, solutions: dict[str, str]):
        self.solutions = solutions

    def stream(self, question, choices=None, image=None, theorems=()):
        import re

        yield from re.findall(r"\S+\s*|\n", self.solutions[question])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint dir (default: the embedded demo model)")
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=768)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--replay-gold", action="store_true",
                        help="no model: stream each example's gold solution instantly, to time the app's own work "
                             "(retrieval, parsing, checking, rendering)")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from app import examples, handlers, serving
    from theorem_bank import open_bank

    t0 = time.perf_counter()
    gallery = examples.load_gallery()
    if args.replay_gold:
        tutor = GoldReplay({ex.question: ex.solution for ex in gallery})
    else:
        tutor = serving.open_tutor(serving.ServingConfig(model=args.model, device="cpu",
                                                         max_new_tokens=args.max_new_tokens))
    bank = open_bank()
    bank.retrieve("warm up", k=1)
    handlers.warm_up(bank, gallery[0].solution)
    load_s = time.perf_counter() - t0

    first_card, total, steps, correct = [], [], [], 0
    for i in range(args.requests):
        ex = gallery[i % len(gallery)]
        start = time.perf_counter()
        seen_card = None
        final = None
        for view in handlers.solve(tutor, bank, ex.image, ex.question, *ex.choice_boxes(), False, None):
            if seen_card is None and 'class="tt-card tt-step' in view.steps:
                seen_card = time.perf_counter() - start
            final = view
        total.append(time.perf_counter() - start)
        if seen_card is not None:
            first_card.append(seen_card)
        steps.append(final.steps.count('class="tt-card tt-step'))
        correct += int(ex.answer_letter is not None and f'class="tt-choice">{ex.answer_letter}<' in final.answer)

    median = lambda xs: round(statistics.median(xs), 3) if xs else None  # noqa: E731
    print(json.dumps({
        "bench": "app_latency", "model": tutor.identity.get("model"), "demo": bool(tutor.identity.get("demo")),
        "random_weights": bool(tutor.identity.get("random")), "device": tutor.identity.get("device"),
        "threads": torch.get_num_threads(), "requests": args.requests,
        "first_step_card_s_median": median(first_card), "requests_with_steps": len(first_card),
        "full_solution_s_median": median(total), "full_solution_s_max": round(max(total), 3),
        "mean_steps": round(sum(steps) / len(steps), 2), "correct_choice": correct,
        "targets": {"first_step_card_s": 2.0, "full_solution_s": 10.0},
        "load_s": round(load_s, 1),
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
