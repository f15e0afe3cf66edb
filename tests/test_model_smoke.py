"""The smoke run (the README's run command until the app exists) on a tiny checkpoint."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from model.smoke import ASSETS, EXAMPLE, draw_example_diagram, main


def test_smoke_run_prints_output_and_figures(tiny_model_dir, capsys, monkeypatch):
    import model.smoke

    # Building the theorem bank from scratch is the bank's own (slow, separately tested) business.
    monkeypatch.setattr(model.smoke, "example_theorems", lambda ids: [{"id": i} for i in ids])
    assert main(["--model", str(tiny_model_dir), "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert "----- raw output -----" in out and "expected answer: 130°" in out
    for figure in ("load time:", "tokens/s", "peak memory:"):
        assert figure in out


@pytest.mark.parametrize("args, message", [(["--model", "/no/such/dir"], "does not exist"), (["--device", "tpu"], "unknown device")])
def test_smoke_run_reports_bad_setups(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_bundled_example_is_consistent(tmp_path):
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert example["choices"][example["answer_index"]] == example["answer"]
    bundled = Image.open(ASSETS / example["image"])
    redrawn = Image.open(draw_example_diagram(tmp_path / "again.png"))
    assert bundled.size == redrawn.size == (360, 260)
