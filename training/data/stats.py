"""What is inside a built training file: counts, steps per problem, theorems used, rejects by reason."""
from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from training.loaders import BadRecords, load_records


def file_stats(path: str | Path, top: int = 15) -> dict[str, Any]:
    path = Path(path)
    bad = BadRecords(skip=True)
    by_source, by_split, kinds, theorems, status = Counter(), Counter(), Counter(), Counter(), Counter()
    steps_per_problem, with_image, n = [], 0, 0
    for record in load_records(path, bad=bad):
        n += 1
        origin = record.meta.get("origin")
        by_source[f"{record.source}/{origin}" if origin else record.source] += 1
        by_split[record.split] += 1
        kinds[record.meta.get("target_kind", "none")] += 1
        with_image += record.image is not None
        if record.steps:
            steps_per_problem.append(len(record.steps))
            theorems.update(step["theorem"] for step in record.steps)
        status.update(record.meta.get("step_status") or [])
    rejects = Counter()
    rejects_file = path.with_name(path.stem + ".rejects.jsonl")
    if rejects_file.is_file():
        for line in rejects_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                rejects[entry.get("reason", "").split(":", 1)[0]] += 1
    spp = steps_per_problem
    return {
        "file": str(path), "records": n, "unreadable_lines": bad.count, "with_image": with_image,
        "by_source": dict(by_source.most_common()), "by_split": dict(by_split.most_common()),
        "target_kinds": dict(kinds),
        "steps_per_problem": {"mean": round(statistics.mean(spp), 2), "median": statistics.median(spp),
                              "max": max(spp), "problems_with_steps": len(spp)} if spp else None,
        "step_status": dict(status),
        "theorems_used": len(theorems), "top_theorems": dict(theorems.most_common(top)),
        "rejects_by_reason": dict(rejects.most_common()),
    }
