"""Loading: local checkpoints, PEFT adapters (base from adapter_config.json or overridden), merged checkpoints,
device/dtype choice, and clear errors for everything that is not a model."""

from __future__ import annotations

import json

import pytest
import torch

from model.generation import GenerationOptions, generate, generate_completions
from model.images import CELL, ImageOptions
from model.loading import (
    DeviceError,
    ModelLoadError,
    load_model,
    resolve_attention,
    resolve_device,
    resolve_dtype,
)
from model.prompting import build_messages
from model.smoke import ASSETS
from model.tiny import tiny_checkpoint

IMAGES = ImageOptions(min_pixels=4 * CELL * CELL, max_pixels=16 * CELL * CELL)
GREEDY = GenerationOptions(max_new_tokens=12)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    # A larger init std than usual so that different prompts and weights give visibly different answers.
    return tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny-models", seed=0, init_std_permille=200)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # A tiny model is dominated by per-op overhead: one thread beats two fighting other processes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def conversations():
    diagram = str(ASSETS / "example_parallel_lines.png")
    return [
        build_messages("Find ∠GHC.", choices=["50°", "130°"], image=diagram),
        build_messages("AB = 3, BC = 4, ∠B = 90°. Find AC."),
    ]


@pytest.fixture(scope="module")
def adapter_and_merged(base_dir, tmp_path_factory):
    """A LoRA adapter with non-zero weights (so it changes answers) and the same adapter merged and saved."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    out = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(1)
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.save_pretrained(out / "adapter")
    recorded = json.loads((out / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded == str(base_dir)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(out / "merged")
    AutoProcessor.from_pretrained(base_dir).save_pretrained(out / "merged")
    return out / "adapter", out / "merged"


def test_round_trip_save_load_generate(base_dir, conversations, tmp_path):
    loaded = load_model(base_dir)
    assert loaded.device == "cpu" and loaded.dtype == torch.float32 and loaded.attn_implementation == "sdpa"
    first = generate(loaded, conversations, GREEDY, IMAGES)
    assert all(isinstance(text, str) and text for text in first)
    loaded.model.save_pretrained(tmp_path / "again")
    loaded.processor.save_pretrained(tmp_path / "again")
    assert generate(load_model(tmp_path / "again"), conversations, GREEDY, IMAGES) == first


def test_adapter_loaded_and_merged_give_identical_greedy_outputs(base_dir, adapter_and_merged, conversations):
    adapter_dir, merged_dir = adapter_and_merged
    with_adapter = load_model(adapter_dir)  # base found through adapter_config.json
    assert with_adapter.adapter == str(adapter_dir) and with_adapter.base == str(base_dir)
    from peft import PeftModel

    assert isinstance(with_adapter.model, PeftModel)
    merged = load_model(merged_dir)
    options = GenerationOptions(max_new_tokens=24)
    adapter_out = generate(with_adapter, conversations, options, IMAGES)
    assert adapter_out == generate(merged, conversations, options, IMAGES)
    assert adapter_out == generate(load_model(adapter_dir, merge_adapter=True), conversations, options, IMAGES)
    assert adapter_out != generate(load_model(base_dir), conversations, options, IMAGES)  # the adapter matters


def test_adapter_base_can_be_overridden(base_dir, adapter_and_merged, tmp_path, conversations):
    import shutil

    adapter_dir, _ = adapter_and_merged
    moved = tmp_path / "moved-adapter"
    shutil.copytree(adapter_dir, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "base-that-moved")
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="base-that-moved.*does not exist"):
        load_model(moved)
    overridden = load_model(base_dir, adapter=moved)
    assert overridden.base == str(base_dir)
    assert generate(overridden, conversations[:1], GREEDY, IMAGES) == generate(
        load_model(adapter_dir), conversations[:1], GREEDY, IMAGES
    )


def test_adapter_without_recorded_base(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(ModelLoadError, match="no base_model_name_or_path.*--model BASE --adapter"):
        load_model(tmp_path)


def test_bf16_on_cpu_generates(base_dir, conversations):
    loaded = load_model(base_dir, dtype="bfloat16")
    assert loaded.dtype == torch.bfloat16
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    completions = generate_completions(loaded, conversations, GenerationOptions(max_new_tokens=6), IMAGES)
    assert all(c.text and 1 <= c.num_tokens <= 6 for c in completions)


def test_missing_path_error_names_path_and_how_to_get_weights(tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path / "no-such-model")
    message = str(info.value)
    assert "no-such-model does not exist" in message and "hf download" in message and "model.tiny" in message


def test_directory_that_is_neither_model_nor_adapter(tmp_path):
    (tmp_path / "README.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match=r"neither a model \(no config.json\) nor a PEFT adapter.*README.txt"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(tmp_path / "README.txt")


def test_hub_id_without_network_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_model("theorem-tutor-tests/definitely-not-cached-model")
    message = str(info.value)
    assert "hub id theorem-tutor-tests/definitely-not-cached-model" in message
    assert "HF_HUB_OFFLINE" in message and "hf download" in message


def test_adapter_argument_must_be_an_adapter(base_dir):
    with pytest.raises(ModelLoadError, match="not a PEFT adapter directory"):
        load_model(base_dir, adapter=base_dir)


def test_device_and_dtype_resolution(monkeypatch):
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype("float16", "cpu") == torch.float16
    with pytest.raises(DeviceError, match="unknown dtype"):
        resolve_dtype("int3", "cpu")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_attention("auto", "cpu", torch.float32) == "sdpa"
    assert resolve_attention("eager", "cpu", torch.float32) == "eager"
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "flash_attn" else None)
    assert resolve_attention("auto", "cuda", torch.bfloat16) == "flash_attention_2"
    assert resolve_attention("auto", "cuda", torch.float32) == "sdpa"  # flash-attn needs half precision
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert resolve_attention("auto", "cuda", torch.bfloat16) == "sdpa"


def test_auto_picks_cuda_bf16_when_a_gpu_exists(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU; the error path needs none")
def test_cuda_without_gpu_is_a_clear_error(base_dir):
    with pytest.raises(DeviceError, match="no CUDA GPU is visible.*--device cpu"):
        load_model(base_dir, device="cuda")
