"""train.py on a tiny Qwen2.5-VL: each tuning mode trains exactly what it should, resume is exact, the final
directory serves, and two accelerate processes follow the single-process loss curve."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import load_config
from training.trainer import run_training

REPO = Path(__file__).resolve().parents[1]
TINY_TEST = REPO / "configs" / "tiny-test.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "train"


def tiny_config(tmp_path: Path, model_dir: Path | None, *overrides: str):
    model = [f"model.path={model_dir}", "model.scratch=null"] if model_dir else []
    return load_config(TINY_TEST, [f"data.dir={FIXTURE}", f"train.output_dir={tmp_path / 'run'}", *model, *overrides])


@pytest.fixture(scope="module")
def train_model_dir(tmp_path_factory) -> Path:
    """A tiny checkpoint whose tokenizer was trained on the fixture texts, so examples are ~350 tokens, not ~530."""
    from model.tiny import build_tiny_checkpoint
    from training.collator import PrepareStats
    from training.trainer import load_examples, scratch_corpus

    examples, _ = load_examples(load_config(TINY_TEST, [f"data.dir={FIXTURE}"]), "train", PrepareStats())
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-fixture-model"), seed=0, corpus=scratch_corpus(examples))


@pytest.fixture(scope="module")
def fittable_model_dir(tmp_path_factory) -> Path:
    """The fixture-tokenizer checkpoint with weights drawn 10x wider (std 0.2). At the usual 0.02 the frozen random
    output head and final norm cap every logit near +-1, so a LoRA or the MLPs alone can barely lower the loss
    below ln(vocab) whatever they learn (6.36 -> ~6.1): a margin that numerics (library version, threads) flip."""
    from model.tiny import build_tiny_checkpoint
    from training.collator import PrepareStats
    from training.trainer import load_examples, scratch_corpus

    examples, _ = load_examples(load_config(TINY_TEST, [f"data.dir={FIXTURE}"]), "train", PrepareStats())
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-fittable-model"), seed=0,
                                 corpus=scratch_corpus(examples), init_std_permille=200)


class Snapshot:
    """Parameters and their requires_grad at the start and the end of training, and the loss on every training
    example at both ends (eval mode, one batch, the trainer's own collator): the untrained start is the control."""

    def __new__(cls):
        from transformers import TrainerCallback

        from training.trainer import token_mean_loss

        class _Snapshot(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
                self.before = {n: p.detach().clone() for n, p in model.named_parameters()}
                self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}
                dataset = train_dataloader.dataset
                self.batch = train_dataloader.collate_fn([dataset[i] for i in range(len(dataset))])
                self.loss_before = self._loss(model)

            def on_train_end(self, args, state, control, model=None, **kwargs):
                self.after = {n: p.detach().clone() for n, p in model.named_parameters()}
                self.loss_after = self._loss(model)

            def _loss(self, model) -> float:
                was_training = model.training
                model.eval()
                with torch.no_grad():
                    loss = token_mean_loss(model(**self.batch), self.batch["labels"]).item()
                model.train(was_training)
                return loss

            def changed(self) -> set[str]:
                return {n for n in self.before if not torch.equal(self.before[n], self.after[n])}

        return _Snapshot()


def losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


MODE_OVERRIDES = {
    "lora": ["tuning.mode=lora", "tuning.train_vision=false", "tuning.lora.r=16", "tuning.lora.alpha=64",
             "tuning.lora.dropout=0.0", "train.lr=2e-2"],
    "mlp": ["tuning.mode=mlp", "tuning.train_vision=false", "train.lr=5e-2"],
    "full": ["tuning.mode=full", "tuning.train_vision=false", "train.lr=1e-2"],
}


@pytest.mark.parametrize("mode", ["lora", "mlp", "full"])
def test_each_mode_lowers_the_loss_and_changes_exactly_its_parameters(tmp_path, fittable_model_dir, mode):
    snapshot = Snapshot()
    # A fixed small set (8 examples, 2 batches of 4) seen for 24 steps: every mode can fit it.
    config = tiny_config(tmp_path, fittable_model_dir, *MODE_OVERRIDES[mode], "data.max_examples=8",
                         "train.max_steps=24", "train.batch_size=4", "train.grad_accum=1", "train.save_steps=24",
                         "train.warmup_ratio=0.0", "train.lr_scheduler=constant_with_warmup")
    result = run_training(config, callbacks=[snapshot])
    assert len(losses(Path(result.output_dir))) == 24
    # The same 8 examples, the same batch, before and after: measured ~7.6 -> 1.3 (LoRA), 0.3 (MLP), 0.1 (full).
    # Halving is far from both the measured drop and the noise (a mode that learns nothing stays at 1.0x).
    assert snapshot.loss_after < 0.5 * snapshot.loss_before, (snapshot.loss_before, snapshot.loss_after)

    trainable = snapshot.trainable
    assert snapshot.changed() == trainable  # every trainable parameter moved, every frozen one stayed put
    if mode == "lora":
        assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
        assert all("language_model.layers" in n for n in trainable)
        assert {re.search(r"\.(\w+_proj)\.lora", n).group(1) for n in trainable} == {
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    elif mode == "mlp":
        mlp = {n for n in snapshot.before if re.search(r"language_model\.layers\.\d+\.mlp\.", n)}
        assert trainable == mlp and mlp
    else:
        language = {n for n in snapshot.before if "language_model." in n or n.startswith("lm_head.")}
        assert trainable == language
        assert not any("visual" in n for n in trainable)
    table = {row["group"]: row for row in result.trainable}
    assert table["vision tower"]["trainable"] == 0
    assert sum(row["trainable"] for row in result.trainable) == sum(snapshot.before[n].numel() for n in trainable)


def test_final_directory_serves_and_records_how_it_was_made(tmp_path, train_model_dir):
    from model.generation import GenerationOptions, generate
    from model.loading import load_model

    config = tiny_config(tmp_path, train_model_dir, *MODE_OVERRIDES["lora"], "train.max_steps=4", "train.save_steps=2",
                         "data.eval_split=val", "eval.every_checkpoint=true", "eval.max_examples=2",
                         "eval.max_new_tokens=4")
    result = run_training(config)
    out = Path(result.output_dir)
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
            "processor_config.json", "train_config.yaml", "data_fingerprint.json", "metrics.jsonl",
            "serving_profile.json"} <= names
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(train_model_dir.resolve())
    assert load_config(out / "train_config.yaml") == config
    from model.profile import load_profile

    profile = load_profile(out)  # the adapter folder carries what it must be served with
    assert profile.origin == "train.py" and profile.prompt_theorems == config.data.prompt_theorems
    assert profile.point_names is None  # a pretrained base: point names are served as the student wrote them
    assert profile.repetition_penalty == 1.0 and profile.max_new_tokens >= profile.longest_target_tokens > 0
    fingerprint = json.loads((out / "data_fingerprint.json").read_text())
    assert fingerprint["examples"] == 24 and fingerprint["target"] == "theorem" and len(fingerprint["sha256"]) == 64
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval_loss" in r] == [2, 4]
    assert [r["eval_answer_n"] for r in rows if "eval_answer_accuracy" in r] == [2, 2]
    # The processor saved with the model sizes images as training did.
    saved = json.loads((out / "processor_config.json").read_text())
    assert saved["image_processor"]["size"] == {"shortest_edge": 3136, "longest_edge": 12544}

    loaded = load_model(out, device="cpu")  # an adapter directory: its base comes from adapter_config.json
    assert loaded.adapter == str(out)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Find ∠C."}]}]
    assert isinstance(generate(loaded, [messages], GenerationOptions(max_new_tokens=3))[0], str)

    with pytest.raises(FileExistsError, match="--resume"):
        run_training(config)


def test_resume_after_interruption_gives_the_same_final_weights(tmp_path, train_model_dir):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                control.should_training_stop = True

    # Dropout on, so the restored RNG state matters; 2 epochs of 3 batches, so the data position does too.
    common = ["tuning.lora.dropout=0.1", "data.max_examples=12", "train.batch_size=4", "train.grad_accum=1",
              "train.max_steps=7", "train.save_steps=4"]
    straight = run_training(tiny_config(tmp_path / "a", train_model_dir, *MODE_OVERRIDES["lora"], *common))
    interrupted = tiny_config(tmp_path / "b", train_model_dir, *MODE_OVERRIDES["lora"], *common)
    first = run_training(interrupted, callbacks=[StopAt()])
    assert first.steps == 4
    resumed = run_training(interrupted, resume=True)
    assert resumed.steps == 7

    a = load_file(Path(straight.output_dir) / "adapter_model.safetensors")
    b = load_file(Path(resumed.output_dir) / "adapter_model.safetensors")
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert losses(Path(resumed.output_dir)) == losses(Path(straight.output_dir))  # metrics de-duplicated on resume


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(240)
def test_two_accelerate_processes_follow_the_single_process_loss_curve(tmp_path):
    # Global batch 4 both ways: 2 processes x 2 examples, or 1 process x 2 examples x 2 accumulation steps.
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "train.py", "--config", "configs/tiny-test.yaml",
               f"train.output_dir={two}", "train.grad_accum=1"]
    launched = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # One thread while the two ranks run; then the session's own count again (a hard-coded 2 here left every
    # later test of the session on 2 threads, and test_train_resume's in-process curves 4.5e-5 off its 1-thread
    # children's in a full run).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run_training(load_config(TINY_TEST, [f"train.output_dir={tmp_path / 'one'}", "train.grad_accum=2"]))
    finally:
        torch.set_num_threads(threads)
    output, _ = launched.communicate(timeout=200)
    assert launched.returncode == 0, output[-3000:]

    curve_one, curve_two = losses(Path(single.output_dir)), losses(two)
    assert len(curve_one) == len(curve_two) == 8
    assert curve_two == pytest.approx(curve_one, rel=1e-4)
    assert curve_one[-1] < curve_one[0]
    summary = json.loads((two / "train_summary.json").read_text())
    assert summary["steps"] == 8
    assert (two / "model.safetensors").is_file()
