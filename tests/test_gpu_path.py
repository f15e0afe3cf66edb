"""The 7B path's CPU twins: mixed image / text-only micro-batches under FSDP2, a frozen vision tower outside the
backward, saved dtype agreeing with config.json, vLLM engine arguments, and model.gpu_check's JSON line."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from training.config import load_config

REPO = Path(__file__).resolve().parents[1]
TINY_TEST = REPO / "configs" / "tiny-test.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "train"


def _tiny_run(tmp_path, model_dir, *overrides):
    return load_config(TINY_TEST, [f"data.dir={FIXTURE}", f"train.output_dir={tmp_path / 'run'}",
                                   f"model.path={model_dir}", "model.scratch=null", *overrides])


def _batch(processor, image: bool):
    from model.gpu_check import training_batch

    return training_batch(processor, 1, 96, "cpu", image=image)


# ------------------------------------------------------------------------------------------- finding 1


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_fsdp2_step_with_one_image_and_one_text_only_rank_completes(tiny_model_dir, monkeypatch):
    from model.gpu_check import fsdp_mixed_step

    monkeypatch.setenv("GPU_CHECK_COLLECTIVE_TIMEOUT", "40")
    result = fsdp_mixed_step(str(tiny_model_dir), processes=2, timeout=180)
    assert result["ok"] is True, result
    by_rank = {r["rank"]: r for r in result["ranks"]}
    for rank in (0, 1):
        steps = by_rank[rank]["steps"]
        assert [s["image"] for s in steps] == ([True, False] if rank == 0 else [False, True])  # mixed every step
        assert by_rank[rank]["dummy_runs"] == 1  # its one text-only step ran the tower on the dummy image
        assert all(s["grad_dtypes"] == ["torch.float32"] for s in steps)  # reduce-scatter in fp32, not bf16
    # The same example gives the same loss on either rank: the dummy pass changed nothing.
    assert by_rank[0]["steps"][0]["loss"] == by_rank[1]["steps"][1]["loss"]
    assert by_rank[0]["steps"][1]["loss"] == by_rank[1]["steps"][0]["loss"]

    # Without the dummy pass the same step fails with a collective mismatch (or hangs): the bug this fixes.
    broken = fsdp_mixed_step(str(tiny_model_dir), processes=2, timeout=180, vision_fix=False)
    assert broken["ok"] is False


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_zero3_step_with_one_image_and_one_text_only_rank_completes(tiny_model_dir, monkeypatch):
    # DeepSpeed on CPU builds its shared-memory comm op on first use (~10 min on 2 cores, then cached).
    pytest.importorskip("deepspeed", reason="the ZeRO-3 twin needs `pip install deepspeed`")
    from model.gpu_check import fsdp_mixed_step

    monkeypatch.setenv("GPU_CHECK_COLLECTIVE_TIMEOUT", "60")
    result = fsdp_mixed_step(str(tiny_model_dir), processes=2, timeout=280, engine="zero3")
    assert result["ok"] is True, result
    for rank in result["ranks"]:
        assert [s["image"] for s in rank["steps"]] == ([True, False] if rank["rank"] == 0 else [False, True])
        assert rank["dummy_runs"] == 1
    broken = fsdp_mixed_step(str(tiny_model_dir), processes=2, timeout=280, engine="zero3", vision_fix=False)
    assert broken["ok"] is False  # gloo: "Is there a distributed collective mismatch in your code?"


def test_text_only_forward_with_the_hook_gives_the_same_loss_and_gradients(tiny_model_dir):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from model.gpu_check import supervised_loss
    from model.modality import run_vision_on_text_batches

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.train()
    text = _batch(processor, image=False)

    def loss_and_grads():
        model.zero_grad(set_to_none=True)
        loss = supervised_loss(model, text)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain_loss, plain_grads = loss_and_grads()
    handle = run_vision_on_text_batches(model)
    vision_calls = []
    model.model.visual.register_forward_pre_hook(lambda module, args: vision_calls.append(1))
    hooked_loss, hooked_grads = loss_and_grads()
    assert handle.dummy_runs == 1 and len(vision_calls) == 1  # the tower ran on the text-only batch
    assert torch.equal(plain_loss, hooked_loss)
    visual = {n for n in hooked_grads if "visual" in n}
    assert visual and all(not hooked_grads[n].any() for n in visual)  # vision parameters join the step with zero
    assert plain_grads.keys() == hooked_grads.keys() - visual
    for name, grad in plain_grads.items():
        assert torch.equal(grad, hooked_grads[name]), name

    supervised_loss(model, _batch(processor, image=True)).backward()
    assert handle.dummy_runs == 1 and len(vision_calls) == 2  # an image batch runs the tower once, on its image
    with torch.inference_mode():  # generation (model.generation decodes in inference mode) is left alone
        model(**{k: v for k, v in text.items() if k != "labels"})
    assert handle.dummy_runs == 1


def test_distributed_training_installs_the_vision_pass(tiny_model_dir, tmp_path):
    from training.trainer import apply_tuning, load_model, prepare_for_training

    config = _tiny_run(tmp_path, tiny_model_dir, "tuning.mode=full", "tuning.train_vision=false")
    single = prepare_for_training(apply_tuning(load_model(tiny_model_dir, config), config), config, 1)
    several = prepare_for_training(apply_tuning(load_model(tiny_model_dir, config), config), config, 2)
    assert not single.model.language_model._forward_pre_hooks
    assert len(several.model._forward_pre_hooks) == len(several.model.language_model._forward_pre_hooks) == 1


# ------------------------------------------------------------------------------------------- finding 5


class VisionWatch:
    """Counts vision-tower forwards and backwards during training, and whether its output asked for a gradient."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _VisionWatch(TrainerCallback):
            forwards = backwards = 0
            output_requires_grad: list = []

            def on_train_begin(self, args, state, control, model=None, **kwargs):
                core = next(m for m in model.modules() if hasattr(m, "visual") and hasattr(m, "language_model"))
                block = core.visual.blocks[0]
                self.checkpointed = (block.gradient_checkpointing, core.language_model.layers[0].gradient_checkpointing)
                block.register_forward_pre_hook(lambda m, a: setattr(self, "forwards", self.forwards + 1))
                block.register_full_backward_hook(lambda m, gi, go: setattr(self, "backwards", self.backwards + 1))
                core.visual.register_forward_hook(
                    lambda m, a, out: self.output_requires_grad.append(out.pooler_output.requires_grad))

        return _VisionWatch()


@pytest.mark.parametrize("mode", ["lora", "mlp"])
def test_checkpointing_leaves_the_frozen_vision_tower_out_of_the_backward(tiny_model_dir, tmp_path, mode):
    from training.trainer import run_training

    watch = VisionWatch()
    config = _tiny_run(tmp_path, tiny_model_dir, f"tuning.mode={mode}", "tuning.train_vision=false",
                       "train.gradient_checkpointing=true", "train.max_steps=2", "train.batch_size=4",
                       "train.grad_accum=1", "train.save_steps=100")
    run_training(config, callbacks=[watch])
    images_seen = len(watch.output_requires_grad)
    assert images_seen >= 1  # the fixture batches hold images
    assert watch.output_requires_grad == [False] * images_seen  # nothing asks the tower for a gradient
    assert watch.backwards == 0  # no backward through its blocks
    assert watch.forwards == images_seen  # one forward per image batch, no recompute
    assert watch.checkpointed == (False, True)  # the language model is checkpointed, the frozen tower not


# ------------------------------------------------------------------------------------------- findings 3 and 4


def _saved_dtypes(out: Path) -> set[str]:
    found = set()
    for path in out.glob("*.safetensors"):
        found |= {str(t.dtype).removeprefix("torch.") for t in load_file(str(path)).values() if t.is_floating_point()}
    return found


@pytest.mark.parametrize("mode", ["full", "lora-merged"])
def test_a_bf16_run_saves_bf16_weights_and_says_so(tiny_model_dir, tmp_path, mode):
    from training.trainer import run_training

    tuning = ["tuning.mode=full", "tuning.train_vision=false"] if mode == "full" else [
        "tuning.mode=lora", "tuning.train_vision=false", "tuning.lora.r=4", "tuning.lora.merge=true"]
    config = _tiny_run(tmp_path, tiny_model_dir, *tuning, "train.precision=bf16", "train.max_steps=1",
                       "train.save_steps=100", "train.batch_size=2", "train.grad_accum=1")
    out = Path(run_training(config).output_dir)
    saved = json.loads((out / "config.json").read_text())
    assert _saved_dtypes(out) == {"bfloat16"}
    assert saved["dtype"] == saved["torch_dtype"] == "bfloat16"
    from transformers import Qwen2_5_VLForConditionalGeneration

    assert Qwen2_5_VLForConditionalGeneration.from_pretrained(out).dtype == torch.bfloat16  # dtype from config


def test_store_weights_makes_a_zero3_style_config_agree_with_its_tensors(tmp_path):
    # DeepSpeed's 16-bit save writes bf16 tensors under the float32 config of the fp32-loaded model.
    from training.trainer import store_weights_in

    save_file({"a.weight": torch.ones(2, 2, dtype=torch.bfloat16), "ids": torch.arange(3)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"dtype": "float32", "text_config": {"dtype": "float32"}}))
    assert store_weights_in(tmp_path) == "bfloat16"
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["dtype"] == saved["torch_dtype"] == saved["text_config"]["dtype"] == "bfloat16"
    assert load_file(str(tmp_path / "model.safetensors"))["ids"].dtype == torch.long  # integers left alone


def test_saved_checkpoint_carries_what_a_transformers_4_vllm_reads(tiny_model_dir, tmp_path):
    from training.trainer import run_training

    config = _tiny_run(tmp_path, tiny_model_dir, "tuning.mode=full", "tuning.train_vision=false", "train.max_steps=1",
                       "train.save_steps=100", "train.batch_size=2", "train.grad_accum=1")
    out = Path(run_training(config).output_dir)
    saved = json.loads((out / "config.json").read_text())
    # transformers 4 (and vLLM's Qwen2.5-VL M-RoPE code built on it) read rope_scaling.mrope_section and
    # rope_theta from the top level of config.json, and image sizing from preprocessor_config.json.
    assert saved["rope_scaling"]["mrope_section"] == saved["text_config"]["rope_parameters"]["mrope_section"]
    assert saved["rope_scaling"]["type"] == "mrope"
    assert saved["rope_theta"] == saved["text_config"]["rope_parameters"]["rope_theta"]
    for key in ("hidden_size", "num_hidden_layers", "vocab_size"):
        assert saved[key] == saved["text_config"][key]
    pre = json.loads((out / "preprocessor_config.json").read_text())
    assert pre["min_pixels"] == 3136 and pre["max_pixels"] == 12544  # the bounds the model was trained with
    assert pre["image_processor_type"] == "Qwen2VLImageProcessor" and pre["merge_size"] == 2
    # ... and transformers 5 still reads the directory as before.
    from transformers import AutoConfig, AutoProcessor

    reread = AutoConfig.from_pretrained(out)
    assert reread.text_config.rope_parameters["mrope_section"] == saved["text_config"]["rope_parameters"]["mrope_section"]
    assert reread.text_config.hidden_size == saved["text_config"]["hidden_size"]
    assert AutoProcessor.from_pretrained(out).image_processor.size == {"shortest_edge": 3136, "longest_edge": 12544}


# ------------------------------------------------------------------------------------------- findings 2 and 7


def test_vllm_engine_args_take_an_adapter_alone_with_its_rank_and_image_bounds(tmp_path):
    from model.backends import vllm_engine_args
    from model.images import ImageOptions

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 64, "base_model_name_or_path": "/models/base"}))
    kwargs, lora = vllm_engine_args(str(adapter), None, ImageOptions(min_pixels=3136, max_pixels=12544))
    assert lora == str(adapter) and kwargs["model"] == "/models/base"
    assert kwargs["enable_lora"] is True and kwargs["max_lora_rank"] == 64
    assert kwargs["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 12544}
    assert kwargs["max_model_len"] == 8192
    plain, none = vllm_engine_args("Qwen/Qwen2.5-VL-7B-Instruct", None, ImageOptions(max_pixels=200704))
    assert none is None and "enable_lora" not in plain and plain["mm_processor_kwargs"]["max_pixels"] == 200704


def test_every_vllm_lora_command_in_the_docs_sets_the_adapter_rank():
    texts = {p: p.read_text(encoding="utf-8") for p in [REPO / "README.md", *sorted((REPO / "configs").rglob("*.yaml"))]}
    commands = [(p, line) for p, text in texts.items() for line in text.splitlines()
                if line.strip().lstrip("#").strip().startswith("vllm serve")]
    assert commands
    for path, line in commands:
        if "--enable-lora" in line:
            assert "--max-lora-rank 64" in line, f"{path}: {line}"
        assert "--max-model-len" in line, f"{path}: {line}"


def test_fsdp2_reduces_gradients_in_fp32():
    from accelerate.utils import FullyShardedDataParallelPlugin

    from training.trainer import use_fp32_gradient_reduction

    plugin = FullyShardedDataParallelPlugin(fsdp_version=2)
    plugin.set_mixed_precision("bf16")
    assert plugin.mixed_precision_policy.reduce_dtype == torch.bfloat16  # accelerate's default under bf16
    use_fp32_gradient_reduction(plugin)
    assert plugin.mixed_precision_policy.param_dtype == torch.bfloat16
    assert plugin.mixed_precision_policy.reduce_dtype == torch.float32


def test_the_7b_configs_choose_their_attention_kernel():
    for path in sorted((REPO / "configs").glob("qwen2.5-vl-7b-*.yaml")):
        assert load_config(path).model.attn_implementation == "auto", path


# ------------------------------------------------------------------------------------------- finding 8 and gpu_check


def test_parameter_counts_from_the_7b_config_class():
    from model.gpu_check import estimate_table

    table = estimate_table()
    counts = table["parameters"]
    assert counts["language"] == 7_615_616_512 and counts["vision"] == 676_550_144
    assert counts["total"] == counts["language"] + counts["vision"]
    # 7 projections x 28 layers at r=64: r x (in + out) each
    assert counts["lora"] == 64 * 28 * ((3584 + 3584) * 2 + (3584 + 512) * 2 + (3584 + 18944) * 3)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    figures = table["estimated_gb_batch4x3072"]
    for key in ("full_lm_trained_states", "mlp_trained_states", "lora_step_peak"):
        assert f"{figures[key]:.1f} GB" in readme, key  # the README quotes what the script prints


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_gpu_check_runs_on_cpu_and_prints_one_json_line():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "model.gpu_check", "--device", "cpu"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout[-2000:]  # notices from libraries go to stderr
    result = json.loads(lines[0])
    assert result["device"] == "cpu" and result["load_seconds"] > 0 and result["load_peak_gb"] > 0
    assert result["repetition_penalty"]["prompts"] == 8 and 0 <= result["repetition_penalty"]["differ"] <= 8
    assert set(result["tokens_per_second"]) == {"batch_1", "batch_8"}
    assert all(v > 0 for v in result["tokens_per_second"].values())
    step = result["lora_step"]
    assert step["batch"] == 2 and step["tokens"] == 256 and step["peak_gb"] > 0 and "estimated_gb" in step
    assert step["loss"] > 0
    assert result["fsdp_mixed_step"]["ok"] is None  # one CPU process: skipped, and says so


def test_transformers_serve_gets_the_penalty_in_the_field_it_reads():
    from model.backends import OpenAIBackend
    from model.generation import GenerationOptions

    options = GenerationOptions(max_new_tokens=8, repetition_penalty=1.05, do_sample=True, top_k=20)
    conversation = [{"role": "user", "content": "Find x."}]
    vllm = OpenAIBackend("http://127.0.0.1:1", "m").request_body(conversation, options, streaming=False)
    assert vllm["repetition_penalty"] == 1.05 and vllm["top_k"] == 20 and "frequency_penalty" not in vllm
    served = OpenAIBackend("http://127.0.0.1:1", "m", server="transformers").request_body(conversation, options, False)
    assert served["frequency_penalty"] == pytest.approx(0.05) and "repetition_penalty" not in served
    assert "top_k" not in served  # not honoured there: not sent
