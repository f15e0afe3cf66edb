"""Speed of Exec checking on one core; prints one JSON line.

    python bench/verify.py [--steps N] [--seed S] [--no-bank]

Steps are generated from the seed theorems (theorem_bank/seeds/geometry_core.yaml): every example
becomes a step whose unknown is one role, with the right value (expected "verified") or a wrong one
(expected "wrong"), written with objects such as ∠ABC or AB that get fresh random names, so sympy's
caches help no more than in real use. Figures: steps checked per second and p50/p99 time per step,
both in wall time and in CPU time of this thread (the CPU figures are the ones to compare when other
jobs share the core), and how many verdicts matched the expectation.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from model.checker import check_step  # noqa: E402
from model.solution_format import Step  # noqa: E402



from theorem_bank.schema import TheoremLookup as YamlBank, core_theorems  # noqa: E402 - the one loader and bank


def object_names(example: dict, units: dict, rng: random.Random) -> dict[str, str]:
    """Distinct objects for the roles: angles ∠XYZ, lengths XY (no two the same segment), others by role."""
    letters = rng.sample("ABCDEFGHKMNOPQRSTUVW", 3 * len(example))
    names = {}
    for i, role in enumerate(example):
        a, b, c = letters[3 * i: 3 * i + 3]
        names[role] = {"degree": f"∠{a}{b}{c}", "length": f"{a}{b}"}.get(units[role], role)
    return names


def make_steps(theorems, n: int, rng: random.Random) -> list[tuple[Step, str]]:
    pool = []
    for theorem in theorems:
        for example in theorem["examples"]:
            for unknown in example:
                pool.append((theorem, example, unknown))
    steps = []
    for i in range(n):
        theorem, example, unknown = pool[i % len(pool)]
        objects = object_names(example, {r: theorem["roles"][r]["unit"] for r in example}, rng)
        parts = []
        for role, value in example.items():
            parts.append(f"{role} = {objects[role]}" + ("" if role == unknown else f" = {value}"))
        wrong = i % 3 == 2
        value = example[unknown]
        stated = f"({value}) + 1" if wrong else str(value)
        relation = next((r for r in theorem["relations"] if unknown in r), theorem["relations"][0])
        step = Step(theorem["id"], map="; ".join(parts), exec=f"{relation} => {objects[unknown]} = {stated}")
        steps.append((step, "wrong" if wrong else "verified"))
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bank", action="store_true", help="skip the check against the theorem's relation")
    args = parser.parse_args()
    theorems = list(core_theorems().values())
    bank = None if args.no_bank else YamlBank(theorems)
    steps = make_steps(theorems, args.steps, random.Random(args.seed))

    times, cpu_times, matched = [], [], 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for step, want in steps:
        t0, c0 = time.perf_counter(), time.thread_time()
        result = check_step(step, bank)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
        matched += result.status == want
    total, cpu_total = time.perf_counter() - start, time.process_time() - cpu_start
    times_ms = sorted(t * 1000 for t in times)
    cpu_ms = sorted(t * 1000 for t in cpu_times)
    figures = {
        "steps": len(steps),
        "steps_per_s": round(len(steps) / total, 1),
        "steps_per_cpu_s": round(len(steps) / cpu_total, 1),   # the same on a core shared with other jobs
        "p50_ms": round(statistics.median(times_ms), 2),
        "p99_ms": round(times_ms[int(0.99 * (len(times_ms) - 1))], 2),
        "max_ms": round(times_ms[-1], 1),
        "p50_cpu_ms": round(statistics.median(cpu_ms), 2),
        "p99_cpu_ms": round(cpu_ms[int(0.99 * (len(cpu_ms) - 1))], 2),
        "verdicts_as_expected": round(matched / len(steps), 4),
        "with_bank": bank is not None,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
