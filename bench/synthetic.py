"""Benchmark of the synthetic curriculum generator on one core; prints ONE JSON line.

    python bench/synthetic.py [--n 400] [--seed 0]

Figures: problems per second (wall clock, and per CPU second of this process, which a busy
machine does not distort) end to end (build, phrase, check every step with model.checker, draw and
encode the PNG), the same without the checker and without drawing (where the time goes), and bytes
per problem (JSONL line + PNG).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.synthetic.generate import make_problem  # noqa: E402
from training.synthetic.splits import SPLITS  # noqa: E402


def rate(n: int, seed: int, **flags) -> tuple[float, float, list]:
    """(problems per wall-clock second, problems per CPU second of this process, problems)."""
    problems = []
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        split = SPLITS[i % len(SPLITS)]
        problems.append(make_problem(split, i, seed, **flags))
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu), problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # one core
    make_problem("train", 0, args.seed + 1)                              # warm caches and fonts
    full, full_cpu, problems = rate(args.n, args.seed)
    unchecked, unchecked_cpu, _ = rate(args.n, args.seed + 2, check=False)
    build_only, build_only_cpu, _ = rate(args.n, args.seed + 3, check=False, draw=False)
    json_bytes = sum(len(json.dumps(p.record.to_dict(), ensure_ascii=False).encode()) + 1 for p in problems)
    png_bytes = sum(len(p.png) for p in problems)
    print(json.dumps({
        "bench": "synthetic", "n": args.n, "cores": 1,
        "problems_per_s": round(full, 1),
        "problems_per_cpu_s": round(full_cpu, 1),
        "problems_per_s_without_checker": round(unchecked, 1),
        "problems_per_cpu_s_without_checker": round(unchecked_cpu, 1),
        "problems_per_s_build_only": round(build_only, 1),
        "problems_per_cpu_s_build_only": round(build_only_cpu, 1),
        "bytes_per_problem": round((json_bytes + png_bytes) / args.n),
        "png_bytes_per_problem": round(png_bytes / args.n),
        "jsonl_bytes_per_problem": round(json_bytes / args.n),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
