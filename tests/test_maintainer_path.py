"""The maintainer's whole path on the tiny config, as commands: build training data from FormalGeo7k, train,
evaluate with the evaluator's defaults, and ask the app the same problems: the app's answers are the
evaluator's, and the checkpoint carries what both needed to agree."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORMALGEO = REPO / "tests" / "fixtures" / "data" / "formalgeo"


def run(*args: str, timeout: int = 900) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True)
    assert result.returncode == 0, f"{args[:3]} failed:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """`python -m training.data build` into the folder a config's data.dir names. The fixture's train split has
    no replayable theorem sequence, so its test split (two problems with diagrams) serves as train and val."""
    out = tmp_path_factory.mktemp("theorem-sft")
    for split in ("train", "val"):
        printed = run("-m", "training.data", "build", "--source", "formalgeo7k", "--path", str(FORMALGEO),
                      "--split", "test", "--target", "theorem", "--out", str(out / f"{split}.jsonl"), "--quiet",
                      "--workers", "1")
        assert json.loads(printed.strip().splitlines()[-1])["written"] == 2
    return out


@pytest.mark.timeout(1800)
def test_build_train_evaluate_serve_agree(data_dir, tmp_path):
    from app import handlers, serving
    from model.profile import load_profile
    from theorem_bank import open_bank
    from training.loaders import load_records

    # The answer-only target, rendered by the trainer from the theorem build (as a plain config renders its own
    # from the same files), keeps the answer budget it derives, and so this test, short on a 2-core machine.
    model = tmp_path / "model"
    run("train.py", "--config", "configs/tiny-test.yaml", f"data.dir={data_dir}", f"train.output_dir={model}",
        "train.max_steps=2", "train.save_steps=100", "data.target=answer")
    profile = load_profile(model)
    built = list(load_records(data_dir / "train.jsonl"))
    trained_on = json.loads((model / "data_fingerprint.json").read_text(encoding="utf-8"))
    assert profile.origin == "train.py" and trained_on["examples"] == len(built) == 2
    assert 0 < profile.longest_target_tokens <= profile.max_new_tokens == 64

    # evaluate.py as the README runs it: defaults for everything the checkpoint was trained with (batch size 1
    # only so that padding cannot perturb a greedy token: it is no result-changing setting).
    out = tmp_path / "eval"
    printed = run("evaluate.py", "run", "--benchmark", "formalgeo", "--data", str(FORMALGEO), "--split", "test",
                  "--model", str(model), "--out", str(out), "--batch-size", "1", "--device", "cpu", "--quiet")
    figures = json.loads(printed.strip().splitlines()[-1])
    run_file = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_file["settings"]["profile"] == profile.to_dict()  # "as trained", recorded
    predictions = {json.loads(line)["id"]: json.loads(line)
                   for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()}
    assert figures["n"] == len(predictions) == 2

    # the app's handler, on the same problems as a student would give them
    from training.evaluation.benchmarks import load_benchmark

    tutor = serving.open_tutor(serving.ServingConfig(model=str(model), device="cpu"))
    bank = open_bank(dense=False)
    tutor_right = 0
    for record in load_benchmark("formalgeo", FORMALGEO, split="test"):
        final = list(handlers.solve(tutor, bank, record.image, record.question))[-1]
        line = predictions[record.id]
        assert final.state["done"] and final.state["output"] == line["output"], record.id
        tutor_value = line.get("tutor_answer")
        if tutor_value:
            assert str(tutor_value) in final.answer, record.id
        tutor_right += bool(line["tutor_correct"])
    assert figures["tutor_accuracy"] == tutor_right / 2


@pytest.mark.timeout(1200)
def test_dry_run_of_the_7b_config_checks_data_profile_and_parameters(data_dir):
    printed = run("train.py", "--config", "configs/qwen2.5-vl-7b-theorem-lora.yaml", "--dry-run",
                  f"data.dir={data_dir}")
    assert "data train: 2 examples" in printed and "data val: 2 examples" in printed
    assert "lora adapters" in printed and "dry run: OK" in printed
    lora = next(line for line in printed.splitlines() if line.startswith("lora adapters"))
    # rank 64 on the 7 projections of 28 layers: 161,480,704 trainable parameters, all of them adapters
    assert "161,480,704" in lora
    all_row = next(line for line in printed.splitlines() if line.startswith("all "))
    assert "1.9%" in all_row


def test_dry_run_names_a_missing_split(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "train.py", "--config", "configs/qwen2.5-vl-7b-theorem-lora.yaml",
                             "--dry-run", f"data.dir={tmp_path}"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 2 and "train.jsonl not found" in result.stderr
