"""Same seed, same bytes: the curriculum's records and diagrams are pinned to what the generator wrote before its
families were split by topic (sha256 of every file, computed with the code of commit 3274add)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE_THE_SPLIT = "889078e2548752571713c9d084e0078cc061752f1a70edb3f1401314af10c389"


def tree_digest(folder: Path) -> str:
    # the same digest as `find . -type f | sort | xargs sha256sum | sha256sum`
    lines = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(folder)}\n"
                    for p in sorted(folder.rglob("*"), key=lambda p: f"./{p.relative_to(folder)}") if p.is_file())
    return hashlib.sha256(lines.encode()).hexdigest()


def test_sixty_problems_of_seed_0_are_byte_identical(tmp_path):
    out = tmp_path / "curriculum"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "training.synthetic", "--n", "60", "--seed", "0", "--out", str(out),
                    "--workers", "1"], cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    assert tree_digest(out) == BEFORE_THE_SPLIT
