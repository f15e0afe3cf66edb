"""`python evaluate.py run` with the real tiny model in subprocesses: a SIGKILL at a random moment and a
rerun give the summary of an uninterrupted run; `accelerate launch` with 2 CPU processes gives the same
outputs as 1 process."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
N_PROBLEMS = 16  # the evaluator hands the model 4 batches (4 problems here) at a time: 4 chunks


def write_geoqa_fixture(folder: Path) -> Path:
    """A GeoQA file in the merged format of ../shared/data/geoqa_test_en, two problems with a diagram."""
    from PIL import Image, ImageDraw

    (folder / "images").mkdir(parents=True)
    rows = []
    for i in range(N_PROBLEMS):
        a, b = 30 + 5 * i, 60
        answer = 180 - a - b
        choices = {"A": f"{answer}°", "B": f"{answer + 10}°", "C": f"{a}°", "D": f"{180 - answer}°"}
        row = {"test_index": i, "question": f"In triangle ABC, angle A = {a}.0, angle B = {b}.0, then angle C is ()",
               "choices": choices, "answer_label": "A", "answer": f"{answer}°", "image": None}
        if i in (1, 4):
            image = Image.new("RGB", (120, 90), "white")
            ImageDraw.Draw(image).polygon([(10, 80), (110, 80), (40, 10)], outline="black")
            image.save(folder / "images" / f"{i}.png")
            row["image"] = f"images/{i}.png"
        rows.append(row)
    path = folder / "geoqa_test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_args(data: Path, model: Path, out: Path) -> list[str]:
    # batch size 1 and one thread: every problem's greedy output is independent of which others ran with it;
    # a bank file next to the data, built once without embeddings (BM25 retrieval needs none)
    return ["evaluate.py", "run", "--bank", str(data.parent / "bank.sqlite"), "--benchmark", "geoqa",
            "--data", str(data), "--model", str(model), "--out", str(out),
            "--batch-size", "1", "--max-new-tokens", "12", "--threads", "1", "--quiet", "--device", "cpu",
            "--retrieval-mode", "bm25"]


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}


def comparable(out: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    lines = [json.loads(l) for l in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    return summary, [{k: v for k, v in line.items() if k != "latency_s"} for line in lines]


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory) -> Path:
    return write_geoqa_fixture(tmp_path_factory.mktemp("geoqa-fixture"))


@pytest.fixture(scope="module")
def baseline(fixture_data, tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval-baseline") / "run"
    subprocess.run([sys.executable, *run_args(fixture_data, tiny_model_dir, out)], cwd=REPO, env=env(), check=True,
                   timeout=600, stdout=subprocess.PIPE)
    return out


def test_uninterrupted_run_writes_every_output(baseline):
    summary, lines = comparable(baseline)
    assert summary["n"] == N_PROBLEMS and len(lines) == N_PROBLEMS
    assert [line["id"] for line in lines] == [f"geoqa-test-{i}" for i in range(N_PROBLEMS)]
    assert summary["with_image"] == 2 and summary["modes"] == ["choice"]
    assert summary["settings"]["model"] and summary["settings"]["profile"]["max_pixels"]
    assert (baseline / "report.md").read_text(encoding="utf-8").startswith("# Evaluation: geoqa")


def test_sigkill_at_a_random_moment_then_rerun_gives_the_same_summary(fixture_data, tiny_model_dir, baseline, tmp_path):
    out = tmp_path / "run"
    rng = random.Random(int(time.time()))
    # at least half the problems still to go: the tiny model answers one in a few ms, so with only two left the
    # run could finish inside the random delay below
    lines_before_kill = rng.randint(1, N_PROBLEMS // 2)
    proc = subprocess.Popen([sys.executable, *run_args(fixture_data, tiny_model_dir, out)], cwd=REPO, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    predictions = out / "predictions.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if predictions.exists() and predictions.read_bytes().count(b"\n") >= lines_before_kill:
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.05))  # land anywhere: between lines, inside a generation, inside a write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; raise N_PROBLEMS"
    done_at_kill = predictions.read_bytes().count(b"\n") if predictions.exists() else 0
    assert done_at_kill < N_PROBLEMS and not (out / "summary.json").exists()

    subprocess.run([sys.executable, *run_args(fixture_data, tiny_model_dir, out)], cwd=REPO, env=env(), check=True,
                   timeout=600, stdout=subprocess.PIPE)
    assert comparable(out) == comparable(baseline)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_two_cpu_processes_equal_one_process(fixture_data, tiny_model_dir, baseline, tmp_path):
    out = tmp_path / "sharded"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           *run_args(fixture_data, tiny_model_dir, out)]
    result = subprocess.run(cmd, cwd=REPO, env=env(), timeout=600, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert comparable(out) == comparable(baseline)
    assert not list(out.glob("predictions.rank*.jsonl"))
