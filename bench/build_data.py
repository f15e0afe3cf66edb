"""Theorem targets for all of FormalGeo7k: verified coverage (overall and per source), speed, memory.

    python bench/build_data.py [--limit N] [--workers 2] [--out runs/data/formalgeo7k-theorem.jsonl]
    python bench/build_data.py --summarize OUT.progress.jsonl     # figures of a build still running (a sample:
                                                                  # problems are replayed in random order)

Prints the reject reasons by count, then ONE JSON line. Reads ../shared/data (or $THEOREM_TUTOR_DATA) and
exits with a message when it is absent.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.data.build import BuildOptions, build  # noqa: E402
from training.loaders import shared_data_dir  # noqa: E402


def peak_memory_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, workers) / 1024, 1)  # Linux reports KiB


def summarize(progress: Path) -> int:
    """Coverage figures from the per-problem outcomes written while a build runs."""
    from collections import Counter

    rows = [json.loads(line) for line in progress.read_text(encoding="utf-8").splitlines() if line.strip()]
    def share(rows_):
        return round(sum(r["ok"] for r in rows_) / len(rows_), 4) if rows_ else None
    geoqa = [r for r in rows if r["origin"] in ("GeoQA", "GeoQA-angle")]
    g3k = [r for r in rows if r["origin"] == "Geometry3k"]
    statuses = Counter(s for r in rows if r["ok"] for s in r["status"])
    reasons = Counter(r["reason"].split(":", 1)[0] for r in rows if not r["ok"])
    for reason, count in reasons.most_common():
        print(f"{count:6d}  {reason}", file=sys.stderr)
    print(json.dumps({"bench": "build_data", "partial": len(rows) < 6981, "problems": len(rows),
                      "built": sum(r["ok"] for r in rows), "coverage": share(rows), "coverage_geoqa": share(geoqa),
                      "coverage_geometry3k": share(g3k),
                      "steps_verified_share": round(statuses["verified"] / max(1, sum(statuses.values())), 4),
                      "rejects_by_reason": dict(reasons.most_common()), "progress_file": str(progress)}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", help="keep the built records here (default: a temporary file)")
    parser.add_argument("--summarize", help="print the figures of a (possibly unfinished) build's progress file")
    args = parser.parse_args()
    if args.summarize:
        return summarize(Path(args.summarize))
    data = shared_data_dir() / "formalgeo7k_v1"
    if not (data / "problems_all.jsonl").is_file():
        print(f"skipped: FormalGeo7k not found at {data} (set THEOREM_TUTOR_DATA)", file=sys.stderr)
        return 0
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fg7k-")) / "theorem.jsonl"
    options = BuildOptions(text_only=True, limit=args.limit, workers=args.workers, timeout=args.timeout,
                           replay_order_seed=0)
    start = time.perf_counter()
    summary = build("formalgeo7k", data, "theorem", out, options)
    seconds = time.perf_counter() - start

    by_origin = summary.by_origin
    geoqa = {k: sum(by_origin.get(o, {}).get(k, 0) for o in ("GeoQA", "GeoQA-angle")) for k in ("built", "total")}
    g3k = by_origin.get("Geometry3k", {})
    steps = sum(c.get("steps", 0) for c in by_origin.values())
    verified = sum(c.get("steps_verified", 0) for c in by_origin.values())

    def share(built, total):
        return round(built / total, 4) if total else None

    for reason, count in summary.rejected.most_common():
        print(f"{count:6d}  {reason}", file=sys.stderr)
    print(json.dumps({
        "bench": "build_data", "problems": summary.loaded, "built": summary.written,
        "coverage": share(summary.written, summary.loaded),
        "coverage_geoqa": share(geoqa["built"], geoqa["total"]),
        "coverage_geometry3k": share(g3k.get("built", 0), g3k.get("total", 0)),
        "coverage_by_origin": {o: share(c.get("built", 0), c.get("total", 0)) for o, c in by_origin.items()},
        "steps_verified_share": share(verified, steps), "steps": steps,
        "rejects_by_reason": dict(summary.rejected.most_common()),
        "problems_per_s": round(summary.loaded / seconds, 2), "seconds": round(seconds, 1),
        "workers": args.workers, "peak_memory_mb": peak_memory_mb(), "out": str(out),
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
