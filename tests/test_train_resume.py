"""A training process SIGKILLed anywhere resumes to the loss curve and final weights of a run never interrupted:
full-parameter and LoRA mode, one process and two; a checkpoint whose write was cut is never resumed from, and a
checkpoint that does not fit the model stops the resume instead of training on from other weights.

The kill harness (a child process that kills itself at a chosen point) is bench/train_resume.py's, which prints
the same figures for the README."""
from __future__ import annotations

import importlib.util
import json
import shutil
import socket
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from training.config import load_config
from training.trainer import run_training

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("train_resume_bench", REPO / "bench" / "train_resume.py")
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny base for LoRA and the uninterrupted reference run of each mode (in this process)."""
    root = tmp_path_factory.mktemp("train-resume")
    base = harness.build_base(root)
    straight = {}
    for mode in ("full", "lora"):
        out = root / f"{mode}-straight"
        run_training(load_config(harness.TINY_TEST, harness.overrides_for(mode, out, base)))
        straight[mode] = out
    return root, base, straight


def _resume(out: Path, mode: str, base: Path, capsys):
    result = run_training(load_config(harness.TINY_TEST, harness.overrides_for(mode, out, base)), resume=True)
    return result, capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "lora"])
@pytest.mark.parametrize("point", list(harness.POINTS))
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_curve(runs, mode, point, capsys):
    root, base, straight = runs
    out = root / f"{mode}-{point}"
    killed = harness.run_child(point, harness.overrides_for(mode, out, base))
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-3000:]  # it really died where asked

    result, said = _resume(out, mode, base, capsys)
    assert result.steps == 10
    expected_from = {"mid_step": 4, "between_steps": 4, "checkpoint_write": 4, "after_checkpoint": 8,
                     "final_save": 10}[point]
    assert f"resuming from {out / 'checkpoints' / f'checkpoint-{expected_from}'}" in said
    if point == "checkpoint_write":  # the cut checkpoint-8 is named as skipped, never taken
        assert "skipping" in said and "checkpoint-8" in said

    reference = harness.losses(straight[mode])
    curve = harness.losses(out)
    assert len(curve) == len(reference) == 10
    assert harness.max_difference(curve, reference) <= 1e-5, (curve, reference)
    assert harness.final_weights_equal(out, straight[mode])


def test_a_cut_checkpoint_is_skipped_and_named(tmp_path, runs, capsys):
    # A checkpoint-N whose marker is missing or whose files do not match it: the older sealed one is taken.
    root, base, straight = runs
    out = tmp_path / "run"
    shutil.copytree(straight["full"], out)
    checkpoints = out / "checkpoints"
    (checkpoints / "checkpoint-10" / "checkpoint_complete.json").unlink()
    weights = checkpoints / "checkpoint-8" / "optimizer.pt"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated after sealing (a torn copy)
    shutil.copytree(checkpoints / "checkpoint-8", checkpoints / "checkpoint-12")
    (checkpoints / "checkpoint-12" / "trainer_state.json").unlink()
    shutil.copytree(checkpoints / "checkpoint-10", checkpoints / ".staging" / "checkpoint-14")
    # tiny: save_total_limit=2 kept 8 and 10; without a sealed one left, the run restarts at step 0, and says so.
    result, said = _resume(out, "full", base, capsys)
    for name in ("checkpoint-12", "checkpoint-10", "checkpoint-8", "checkpoint-14"):
        assert f"skipping {checkpoints / name}" in said or f"skipping {checkpoints / '.staging' / name}" in said, said
    assert "no complete checkpoint yet, starting at step 0" in said
    assert result.steps == 10
    assert harness.max_difference(harness.losses(out), harness.losses(straight["full"])) <= 1e-5


def test_a_checkpoint_that_does_not_fit_the_model_stops_the_resume(tmp_path, runs):
    from training.checkpoints import ResumeError, seal

    root, base, straight = runs
    out = tmp_path / "run"
    shutil.copytree(straight["full"], out)
    checkpoint = out / "checkpoints" / "checkpoint-8"
    shutil.rmtree(out / "checkpoints" / "checkpoint-10")
    tensors = load_file(str(checkpoint / "model.safetensors"))
    tensors["model.norm.weight_renamed"] = tensors.pop("model.norm.weight")
    save_file(tensors, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    (checkpoint / "checkpoint_complete.json").unlink()
    seal(checkpoint, 8)  # a sealed, intact checkpoint of another model
    config = load_config(harness.TINY_TEST, harness.overrides_for("full", out, base))
    with pytest.raises(ResumeError, match=r"1 missing \['model.norm.weight'\], 1 unexpected"):
        run_training(config, resume=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_two_processes_killed_between_steps_resume_to_their_uninterrupted_curve(tmp_path):
    # Full-parameter mode, the tiny-test config's own from-scratch model; the resume is `accelerate launch ...
    # train.py --resume`, each process restoring its own RNG state.
    def overrides(out):
        return [*harness.overrides_for("full", out, None), "train.grad_accum=1"]

    straight = harness.run_child("none", overrides(tmp_path / "straight"), processes=2, port=_free_port())
    assert straight.returncode == 0, straight.stderr[-3000:]
    out = tmp_path / "killed"
    killed = harness.run_child("between_steps", overrides(out), processes=2, port=_free_port())
    assert killed.returncode != 0
    assert not (out / "train_summary.json").exists()
    resumed = harness.run_resume(overrides(out), processes=2, port=_free_port())
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoints' / 'checkpoint-4'}" in resumed.stdout
    reference = harness.losses(tmp_path / "straight")
    assert len(reference) == 10
    assert harness.max_difference(harness.losses(out), reference) <= 1e-5
    assert harness.final_weights_equal(out, tmp_path / "straight")
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 10
