"""`python evaluate.py compare` on constructed prediction files with a known McNemar p-value and interval."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import evaluate


def write_run(folder: Path, flags: dict[str, bool], extra: dict[str, bool] | None = None) -> Path:
    folder.mkdir(parents=True)
    rows = [{"key": key, "id": key, "variant": "original", "correct": ok} for key, ok in flags.items()]
    rows += [{"key": f"{key}#shuffle", "id": key, "variant": "shuffle", "correct": ok} for key, ok in (extra or {}).items()]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def constructed_pair(tmp_path):
    """100 common problems: 40 both right, 42 both wrong, 2 only A right, 16 only B right; plus unpaired ones."""
    a, b = {}, {}
    layout = [("both", 40, True, True), ("none", 42, False, False), ("onlyA", 2, True, False), ("onlyB", 16, False, True)]
    for name, count, x, y in layout:
        for i in range(count):
            a[f"{name}-{i}"], b[f"{name}-{i}"] = x, y
    a["unpaired-a"] = True
    b["unpaired-b"] = False
    return write_run(tmp_path / "A", a, extra={"both-0": False}), write_run(tmp_path / "B", b)


def test_compare_gives_the_known_p_value_and_interval(tmp_path, capsys):
    run_a, run_b = constructed_pair(tmp_path)
    out = tmp_path / "cmp.json"
    assert evaluate.main(["compare", str(run_a), str(run_b), "--json", str(out), "--seed", "0"]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 100 and result["only_in_a"] == 1 and result["only_in_b"] == 1
    assert result["accuracy_a"] == pytest.approx(0.42) and result["accuracy_b"] == pytest.approx(0.56)
    assert (result["only_a"], result["only_b"]) == (2, 16)
    # exact McNemar: 2 * P(X <= 2), X ~ Bin(18, 1/2) = 2 * (1 + 18 + 153) / 2**18
    assert result["mcnemar_p"] == pytest.approx(2 * 172 / 2 ** 18, rel=1e-6)
    assert result["difference"] == pytest.approx(-0.14)
    # the paired bootstrap interval of a mean of per-problem differences d in {-1, 0, 1}: with 10,000 resamples
    # it matches the normal approximation mean +- 1.96 * sd(d) / sqrt(n) to within a point
    sd = math.sqrt((18 / 100) - 0.14 ** 2)
    low, high = result["difference_ci95"]
    assert low == pytest.approx(-0.14 - 1.96 * sd / 10, abs=0.01)
    assert high == pytest.approx(-0.14 + 1.96 * sd / 10, abs=0.01)
    assert sorted(result["a_right_b_wrong"]) == ["onlyA-0", "onlyA-1"]
    assert len(result["b_right_a_wrong"]) == 16
    printed = capsys.readouterr().out
    assert "McNemar exact p = 0.001312" in printed and "-14.0 points" in printed
    # seeded: the same command gives the same interval
    evaluate.main(["compare", str(run_a), str(run_b), "--json", str(out), "--seed", "0"])
    assert json.loads(out.read_text())["difference_ci95"] == [low, high]


def test_compare_without_common_problems_says_so(tmp_path, capsys):
    run_a = write_run(tmp_path / "A", {"x": True})
    run_b = write_run(tmp_path / "B", {"y": True})
    assert evaluate.main(["compare", str(run_a), str(run_b)]) == 2
    assert "share no problem ids" in capsys.readouterr().err
    assert evaluate.main(["compare", str(tmp_path / "missing"), str(run_b)]) == 2
    assert "no predictions" in capsys.readouterr().err
