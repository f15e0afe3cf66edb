"""Evaluation throughput on CPU: problems per second through the whole evaluator (prompt, retrieval,
generation, parsing, checking, grading, fsync'd predictions) with batch 1 versus batch 8: continuous batching
(model.continuous, the default for greedy decoding) and, as the peer in the same run, static left-padded batches.

    python bench/eval_throughput.py [--model DIR] [--problems 32] [--max-new-tokens N] [--threads 2]

--max-new-tokens defaults to the checkpoint's serving profile (as trained), so chains end where they would in a
real run. `generation_share` is the fraction of the run spent inside the generator: what is left is prompts,
checking, grading and writing, which overlap the next batch's generation (training/evaluation/runner.py).

Uses the embedded demo model (demo_model/) when it exists, else a tiny random-weight model built on the
spot (the JSON line says which). Problems come from the synthetic curriculum generator, diagrams included.
Prints ONE JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def synthetic_problems(n: int, folder: Path):
    from training.synthetic.generate import make_problem

    records = []
    for index in range(n):
        problem = make_problem("test_iid", index, seed=123)
        image = folder / f"{problem.record.id}.png"
        image.write_bytes(problem.png)
        problem.record.image = str(image)
        records.append(problem.record)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint folder (default: demo_model/, else a tiny model)")
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="default: the checkpoint's profile")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="eval-throughput-") as folder:  # removed afterwards: a bench leaves nothing
        return run(args, Path(folder))


def run(args, scratch: Path) -> int:
    import torch

    from theorem_bank import open_bank
    from model.backends import open_backend
    from training.evaluation.runner import EvalItem, RunSettings, backend_generator, evaluate_items

    if args.model:
        model, kind = Path(args.model), "given"
    elif (REPO / "demo_model" / "config.json").is_file():
        model, kind = REPO / "demo_model", "demo"
    else:
        from model.tiny import build_tiny_checkpoint

        model, kind = build_tiny_checkpoint(scratch / "tiny", seed=0), "tiny (demo_model/ not found)"
    records = synthetic_problems(args.problems, scratch)
    bank = open_bank()
    backend = open_backend("local", model=str(model), device="cpu", batch_size=8)
    profile = backend.profile.replace(retrieval_mode="bm25")
    if args.max_new_tokens:
        profile = profile.replace(max_new_tokens=args.max_new_tokens)
    inner = backend_generator(backend, profile.generation_options())
    generating = {"s": 0.0}

    def generator(prompts):
        began = time.perf_counter()
        try:
            return inner(prompts)
        finally:
            generating["s"] += time.perf_counter() - began
    items = [EvalItem(key=r.id, record=r, mode="choice") for r in records]

    runs = iter(range(100))

    def measure(batch_size: int, scheduler: str = "continuous") -> tuple[float, float]:
        settings = RunSettings(benchmark="synthetic", data="bench", model=str(model), batch_size=batch_size,
                               profile=profile)
        backend.batch_size, backend.scheduler = batch_size, scheduler
        out = scratch / f"run-{next(runs)}-b{batch_size}"  # a fresh folder: a reused one would resume, not run
        generating["s"] = 0.0
        started = time.perf_counter()
        evaluate_items(items, settings, out, generator, bank=bank, progress=False)
        seconds = time.perf_counter() - started
        return len(items) / seconds, generating["s"] / seconds

    measure(8)  # warm-up: first-call costs (kernels, retrieval index, sympy caches) are not throughput
    per_s_1, share_1 = measure(1)
    per_s_8, share_8 = measure(8)
    static_8, _ = measure(8, "static")  # the peer: left-padded batches through model.generate
    print(json.dumps({"bench": "eval_throughput", "model": str(model), "model_kind": kind, "problems": len(items),
                      "max_new_tokens": profile.max_new_tokens, "threads": torch.get_num_threads(),
                      "batch1_problems_per_s": round(per_s_1, 3), "batch8_problems_per_s": round(per_s_8, 3),
                      "ratio": round(per_s_8 / per_s_1, 2), "target_ratio": 3.0,
                      "batch8_static_problems_per_s": round(static_8, 3), "ratio_static": round(static_8 / per_s_1, 2),
                      "generation_share_batch1": round(share_1, 3), "generation_share_batch8": round(share_8, 3),
                      "load_average_1min": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
