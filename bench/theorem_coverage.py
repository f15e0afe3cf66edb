"""How much of FormalGeo7k's theorem usage the bank's `formalgeo` aliases cover.

Prints the uncovered FormalGeo theorem names by frequency, then ONE JSON line:
    python bench/theorem_coverage.py
Reads ../shared/data/formalgeo7k_v1/problems_all.jsonl (or $THEOREM_TUTOR_DATA/...); exits with a
clear message when the data is absent.
"""
from __future__ import annotations

import collections
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from theorem_bank.schema import load_seeds  # noqa: E402


def data_dir() -> Path:
    return Path(os.environ.get("THEOREM_TUTOR_DATA", REPO.parent / "shared" / "data"))


def formalgeo_applications(path: Path) -> collections.Counter:
    """FormalGeo theorem name -> number of applications across every problem's theorem sequence."""
    counts: collections.Counter = collections.Counter()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                for step in json.loads(line)["theorem_seqs"]:
                    counts[step.split("(", 1)[0]] += 1
    return counts


def main() -> int:
    path = data_dir() / "formalgeo7k_v1" / "problems_all.jsonl"
    if not path.exists():
        print(f"skipped: {path} not found (set THEOREM_TUTOR_DATA to the shared data directory)")
        print(json.dumps({"bench": "theorem_coverage", "skipped": True, "reason": f"{path} missing"}))
        return 0
    mapping = {name: t["id"] for t in load_seeds() for name in t["aliases"]["formalgeo"]}
    counts = formalgeo_applications(path)
    total = sum(counts.values())
    uncovered = [(name, n) for name, n in counts.most_common() if name not in mapping]
    print(f"uncovered FormalGeo theorems ({len(uncovered)} of {len(counts)} names used):")
    for name, n in uncovered:
        print(f"  {n:6d}  {name}")
    covered = total - sum(n for _, n in uncovered)
    print(json.dumps({
        "bench": "theorem_coverage",
        "applications": total,
        "covered_applications": covered,
        "coverage": round(covered / total, 4) if total else 0.0,
        "names_used": len(counts),
        "names_covered": len(counts) - len(uncovered),
        "bank_theorems_with_formalgeo_alias": len(set(mapping.values())),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
