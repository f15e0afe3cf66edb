"""Kill-and-resume: a training process SIGKILLed at a chosen point, then `train.py --resume`, against one run
that was never interrupted (tiny config, CPU, same seed).

    python bench/train_resume.py [--modes full lora mlp] [--points mid_step between_steps ...] [--out DIR]

Prints ONE JSON line: for each mode and kill point the largest |loss difference| over the logged loss curve
(goal: <= 1e-5), the exit status of the killed and of the resumed process, and the checkpoint the resume took.
The killed process runs this file as `child` (it installs the kill point, then calls run_training); the
resume is the real CLI, `python train.py --config configs/tiny-test.yaml ... --resume`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_TEST = REPO / "configs" / "tiny-test.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "train"

# 12 examples in batches of 2 with 2 accumulation steps: 3 optimizer steps per epoch, so 10 steps cross epoch
# boundaries (the data position matters) and checkpoints land at steps 4, 8 and 10 (the end).
COMMON = [f"data.dir={FIXTURE}", "data.max_examples=12", "train.batch_size=2", "train.grad_accum=2",
          "train.max_steps=10", "train.save_steps=4", "train.save_total_limit=2", "train.logging_steps=1"]
MODES = {
    "full": ["tuning.mode=full", "tuning.train_vision=true", "train.lr=3e-3"],
    "mlp": ["tuning.mode=mlp", "tuning.train_vision=false", "train.lr=5e-2"],
    # Dropout on, so that the restored RNG state matters.
    "lora": ["tuning.mode=lora", "tuning.train_vision=false", "tuning.lora.r=8", "tuning.lora.alpha=32",
             "tuning.lora.dropout=0.1", "train.lr=2e-2"],
}
KILL_STEP = 6  # an optimizer step that is neither a checkpoint nor the last
SAVE_STEP = 8  # a checkpoint that is not the last
POINTS = {
    "mid_step": f"inside step {KILL_STEP}, after its first micro-batch's backward, before the optimizer step",
    "between_steps": f"right after optimizer step {KILL_STEP}, before it is logged",
    "checkpoint_write": f"while checkpoint-{SAVE_STEP} is written (weights, optimizer, scheduler written; RNG "
                        "and trainer state not yet)",
    "after_checkpoint": f"right after checkpoint-{SAVE_STEP} is complete",
    "final_save": "during the final save (weights written to the output directory, processor not yet)",
}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_point(point: str) -> list:
    """Arrange for this process to SIGKILL itself at `point`; returns the Trainer callbacks that do it."""
    from transformers import ProcessorMixin, Trainer, TrainerCallback

    rank = int(os.environ.get("RANK", "0"))

    class KillAt(TrainerCallback):
        def on_substep_end(self, args, state, control, **kwargs):
            if point == "mid_step" and state.global_step == KILL_STEP - 1:
                die()

        def on_step_end(self, args, state, control, **kwargs):
            if point == "between_steps" and state.global_step == KILL_STEP and rank == 0:
                die()

        def on_save(self, args, state, control, **kwargs):
            if point == "after_checkpoint" and state.global_step == SAVE_STEP and rank == 0:
                die()

    if point == "checkpoint_write":
        save_rng = Trainer._save_rng_state

        def save_rng_then_maybe_die(self, output_dir):
            if self.state.global_step == SAVE_STEP and rank == 0:
                die()
            save_rng(self, output_dir)

        Trainer._save_rng_state = save_rng_then_maybe_die
    if point == "final_save":
        save_processor = ProcessorMixin.save_pretrained

        def save_processor_or_die(self, save_directory, *args, **kwargs):
            if not re.search(r"checkpoint-\d+$|init(\.partial)?$", str(save_directory)):
                die()  # the first processor save into the final directory: the weights are already there
            return save_processor(self, save_directory, *args, **kwargs)

        ProcessorMixin.save_pretrained = save_processor_or_die
    return [KillAt()]


def child(point: str, overrides: list[str]) -> None:
    from training.config import load_config
    from training.trainer import run_training

    callbacks = install_kill_point(point) if point != "none" else []
    run_training(load_config(TINY_TEST, overrides), callbacks=callbacks)


def overrides_for(mode: str, out: Path, base: Path | None) -> list[str]:
    model = [f"model.path={base}", "model.scratch=null"] if base is not None and mode != "full" else []
    return [*COMMON, *MODES[mode], *model, f"train.output_dir={out}"]


def losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_child(point: str, overrides: list[str], processes: int = 1, port: int = 29531) -> subprocess.CompletedProcess:
    script = [str(Path(__file__).resolve()), "child", point, "--", *overrides]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_port", str(port), *script]
    else:
        command = [sys.executable, *script]
    return subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)


def run_resume(overrides: list[str], processes: int = 1, port: int = 29531) -> subprocess.CompletedProcess:
    command = [sys.executable, "train.py", "--config", str(TINY_TEST), *overrides, "--resume"]
    if processes > 1:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", str(processes),
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(port), *command[1:]]
    return subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)


def kill_and_resume(mode: str, point: str, root: Path, base: Path | None, processes: int = 1) -> dict:
    """Kill a run at `point`, resume it with train.py --resume; the curve and what the resume reported."""
    out = root / f"{mode}-{point}-{processes}p"
    overrides = overrides_for(mode, out, base)
    killed = run_child(point, overrides, processes)
    resumed = run_resume(overrides, processes)
    took = re.search(r"resuming from (\S+)", resumed.stdout)
    return {"out": out, "killed_rc": killed.returncode, "resume_rc": resumed.returncode,
            "resumed_from": Path(took.group(1)).name if took else None,
            "skipped": re.findall(r"--resume: skipping (.*)", resumed.stdout),
            "curve": losses(out) if resumed.returncode == 0 else [],
            "log": (killed.stdout + killed.stderr)[-2000:] + "\n----\n" + (resumed.stdout + resumed.stderr)[-3000:]}


def straight(mode: str, root: Path, base: Path | None, processes: int = 1) -> list[float]:
    out = root / f"{mode}-straight-{processes}p"
    done = run_child("none", overrides_for(mode, out, base), processes)
    if done.returncode != 0:
        raise RuntimeError(f"uninterrupted {mode} run failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return losses(out)


def final_weights_equal(a: Path, b: Path) -> bool:
    """Whether two final output directories hold bit-identical weights (full model or adapter)."""
    import torch
    from safetensors.torch import load_file

    name = next((n for n in ("model.safetensors", "adapter_model.safetensors") if (a / n).is_file()), None)
    if name is None or not (b / name).is_file():
        return False
    x, y = load_file(str(a / name)), load_file(str(b / name))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def max_difference(a: list[float], b: list[float]) -> float:
    if len(a) != len(b) or not a:
        return float("inf")
    return max(abs(x - y) for x, y in zip(a, b))


def build_base(root: Path) -> Path:
    """The pretrained-base stand-in for LoRA and MLP mode: a tiny checkpoint with a tokenizer fitted to the data."""
    from model.tiny import build_tiny_checkpoint
    from training.collator import PrepareStats
    from training.config import load_config
    from training.trainer import load_examples, scratch_corpus

    examples, _ = load_examples(load_config(TINY_TEST, [f"data.dir={FIXTURE}"]), "train", PrepareStats())
    return build_tiny_checkpoint(root / "base", seed=0, corpus=scratch_corpus(examples))


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "child":
        split = sys.argv.index("--")
        child(sys.argv[2], sys.argv[split + 1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["full", "lora"], choices=sorted(MODES))
    parser.add_argument("--points", nargs="+", default=list(POINTS), choices=list(POINTS))
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temp dir)")
    args = parser.parse_args(argv)

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="train-resume-") as temp:
        root = args.out or Path(temp)
        root.mkdir(parents=True, exist_ok=True)
        base = build_base(root) if set(args.modes) - {"full"} else None
        figures: dict = {}
        for mode in args.modes:
            reference = straight(mode, root, base)
            for point in args.points:
                got = kill_and_resume(mode, point, root, base)
                figures[f"{mode}/{point}"] = {
                    "max_loss_diff": max_difference(got["curve"], reference), "steps": len(got["curve"]),
                    "killed_rc": got["killed_rc"], "resume_rc": got["resume_rc"],
                    "resumed_from": got["resumed_from"], "skipped": len(got["skipped"]),
                    "final_weights_equal": final_weights_equal(got["out"], root / f"{mode}-straight-1p")}
    worst = max(f["max_loss_diff"] for f in figures.values())
    print(json.dumps({"bench": "train_resume", "points": figures, "max_loss_diff": worst, "goal": 1e-5,
                      "seconds": round(time.time() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
