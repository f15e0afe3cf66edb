"""The first thing to run on a new GPU machine: one JSON line of what the 7B path does there, measured.

Load time and peak memory; one LoRA training step (batch 4 x ~3k tokens, the LoRA config's shape) with its peak
memory next to the README's estimate; greedy outputs with repetition_penalty 1.0 and 1.05 on 8 prompts; generation
tokens/s at batch 1 and 8; and, with 2+ GPUs, one FSDP2 step in which one rank's micro-batch has an image and the
other's is text only (the case that hangs without model.modality). Under 10 minutes on one GPU for the 7B.

    python -m model.gpu_check --model /models/qwen2.5-vl-7b
    python -m model.gpu_check                    # a tiny checkpoint built on the spot, CPU sizes (what CI runs)
    python -m model.gpu_check --estimate-only    # the README's memory table: parameters counted on the meta device
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLE_IMAGE = ASSETS / "example_parallel_lines.png"
GB = 1e9  # decimal gigabytes, as the README states memory

# The shapes measured: the LoRA config's batch on a GPU; a few seconds' worth on CPU.
SIZES = {
    "cuda": {"batch": 4, "tokens": 3072, "new_tokens": 128, "lora_r": 64},
    "cpu": {"batch": 2, "tokens": 256, "new_tokens": 8, "lora_r": 8},
}
LANGUAGE_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PROMPTS = [
    "In the figure, AB ∥ CD and ∠EGB = 50°. Find ∠GHC.",
    "In triangle ABC, ∠A = 40° and ∠B = 29°. Find ∠C.",
    "Two angles form a linear pair; one is 112°. Find the other.",
    "In circle O, the central angle AOB is 80°. Find the inscribed angle ACB.",
    "A right triangle has legs 6 and 8. Find the hypotenuse.",
    "In parallelogram ABCD, ∠A = 65°. Find ∠B.",
    "Lines AB and CD meet at O with ∠AOC = 35°. Find ∠BOD.",
    "An isosceles triangle has a vertex angle of 50°. Find a base angle.",
]


# ------------------------------------------------------------------------------------------- counting and estimating


def qwen25_vl_7b_config():
    """Qwen2.5-VL-7B-Instruct's shape (its published config.json) as the installed transformers' config class."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                     "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                     "tie_word_embeddings": False, "max_position_embeddings": 128000},
        vision_config={"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                       "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                       "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]},
        tie_word_embeddings=False,
    )


def parameter_counts(config, lora_r: int = 64) -> dict[str, int]:
    """Parameters by part, counted on a model built on the meta device (no memory, no weights)."""
    import re

    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    counts = {"total": 0, "vision": 0, "language": 0, "language_mlp": 0, "embeddings": 0, "lm_head": 0, "lora": 0}
    for name, param in model.named_parameters():
        n = param.numel()
        counts["total"] += n
        if ".visual." in f".{name}":
            counts["vision"] += n
            continue
        counts["language"] += n
        if re.search(r"language_model\.layers\.\d+\.mlp\.", name):
            counts["language_mlp"] += n
        if "embed_tokens" in name:
            counts["embeddings"] += n
        if name.startswith("lm_head"):
            counts["lm_head"] += n
        projection = re.search(r"language_model\.layers\.\d+\.(?:self_attn|mlp)\.(\w+_proj)\.weight$", name)
        if projection and projection.group(1) in LANGUAGE_PROJECTIONS:
            out_features, in_features = param.shape
            counts["lora"] += lora_r * (in_features + out_features)
    return counts


def estimate(config, counts: dict[str, int], batch: int, tokens: int, supervised_share: float = 0.25) -> dict:
    """Memory figures in GB (estimated, not measured): what the README's table is built from.

    Trained parameters under AdamW mixed precision cost 16 B each (bf16 weight and gradient, fp32 master, two fp32
    moments); frozen bf16 weights 2 B. Activations with checkpointing: one bf16 hidden state per layer per token, one
    layer's recomputed intermediates (~attention 4 x hidden + MLP 3 x intermediate values per token, bf16), and fp32
    logits at the supervised positions only (the trainer keeps logits there alone)."""
    text = config.text_config
    t = batch * tokens
    boundaries = text.num_hidden_layers * text.hidden_size * 2 * t
    one_layer = (4 * text.hidden_size + 3 * text.intermediate_size) * 2 * t
    logits = int(t * supervised_share) * text.vocab_size * (2 + 4 + 4)  # bf16 logits, fp32 copy, fp32 grad
    activations = boundaries + one_layer + logits
    return {
        "weights_bf16": counts["total"] * 2 / GB,
        "lora_trained_states": counts["lora"] * 16 / GB,
        "mlp_trained_states": counts["language_mlp"] * 16 / GB,
        "full_lm_trained_states": counts["language"] * 16 / GB,
        "activations": activations / GB,
        "lora_step_peak": (counts["total"] * 2 + counts["lora"] * 16 + activations) / GB,
        "mlp_per_gpu_of_8": ((counts["total"] - counts["language_mlp"]) * 2 / 8 + counts["language_mlp"] * 16 / 8
                             + activations / batch * 2) / GB,
        "full_lm_per_gpu_of_8": (counts["vision"] * 2 / 8 + counts["language"] * 16 / 8 + activations / batch * 2) / GB,
    }


# ------------------------------------------------------------------------------------------- measuring


def _peak_memory_gb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / GB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB  # KiB -> GB (peak RSS on CPU)


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def training_batch(processor, batch: int, tokens: int, device: str, image: bool = True) -> dict:
    """`batch` examples of exactly `tokens` tokens: (the bundled diagram and) a long question; the last quarter
    supervised, as a Theorem-SFT target is about a quarter of its example."""
    import torch
    from PIL import Image

    filler = " ".join(PROMPTS) + " "
    text = filler * (tokens // 20 + 4)
    content = ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]
    rendered = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False)
    kwargs = {}
    if image:
        # The tutor's image bounds on a GPU (at most 640 image tokens); 16 tokens at most for the tiny CPU model.
        longest = 501760 if device.startswith("cuda") else 12544
        kwargs = {"images": [Image.open(EXAMPLE_IMAGE).convert("RGB")] * batch,
                  "images_kwargs": {"size": {"shortest_edge": 3136, "longest_edge": longest}}}
    encoded = processor(text=[rendered] * batch, return_tensors="pt", **kwargs)
    for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
        if key in encoded:
            encoded[key] = encoded[key][:, :tokens]
    labels = encoded["input_ids"].clone()
    labels[:, : int(labels.shape[1] * 0.75)] = -100
    encoded["labels"] = labels
    return {k: v.to(device) for k, v in encoded.items()}


def supervised_loss(model, batch: dict):
    """The trainer's loss: cross-entropy at supervised positions only, logits computed there alone."""
    import torch

    batch = dict(batch)
    labels = batch.pop("labels")
    targets = labels[:, 1:]
    positions = (targets != -100).any(dim=0).nonzero().flatten()
    outputs = model(**batch, logits_to_keep=positions)
    kept = targets[:, positions]
    mask = kept != -100
    return torch.nn.functional.cross_entropy(outputs.logits[mask].float(), kept[mask])


def lora_step(loaded, sizes: dict) -> dict:
    """One LoRA (r from `sizes`) forward + backward + AdamW step with checkpointing, as the LoRA config trains."""
    import torch
    from peft import LoraConfig, get_peft_model

    from model.modality import checkpoint_language_model

    model = loaded.model
    names = "|".join(LANGUAGE_PROJECTIONS)
    model = get_peft_model(model, LoraConfig(r=sizes["lora_r"], lora_alpha=2 * sizes["lora_r"], lora_dropout=0.0,
                                             target_modules=rf".*language_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{names})"))
    checkpoint_language_model(model, train_vision=False)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = training_batch(loaded.processor, sizes["batch"], sizes["tokens"], loaded.device)
    _reset_peak(loaded.device)
    started = time.perf_counter()
    with torch.autocast(device_type=loaded.device.split(":")[0], dtype=torch.bfloat16,
                        enabled=loaded.device.startswith("cuda")):
        loss = supervised_loss(model, batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if loaded.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = _peak_memory_gb(loaded.device)
    model.eval()
    return {"batch": sizes["batch"], "tokens": int(batch["input_ids"].shape[1]), "loss": round(float(loss.detach()), 4),
            "seconds": round(seconds, 2), "peak_gb": round(peak, 2)}


def _conversations(n: int, with_image: bool = True) -> list[list[dict]]:
    conversations = []
    for i in range(n):
        prompt = PROMPTS[i % len(PROMPTS)]
        content = ([{"type": "image", "image": str(EXAMPLE_IMAGE)}] if with_image and i == 0 else []) + [
            {"type": "text", "text": prompt}]
        conversations.append([{"role": "user", "content": content}])
    return conversations


def repetition_penalty_outputs(loaded, new_tokens: int) -> dict:
    """Greedy answers to 8 prompts at repetition_penalty 1.0 and 1.05 (does the knob move greedy text?)."""
    from model.generation import GenerationOptions, generate

    conversations = _conversations(8)
    texts = {str(rp): generate(loaded, conversations, GenerationOptions(max_new_tokens=new_tokens,
                                                                        repetition_penalty=rp), batch_size=8)
             for rp in (1.0, 1.05)}
    differ = sum(a != b for a, b in zip(texts["1.0"], texts["1.05"]))
    return {"prompts": len(conversations), "differ": differ,
            "first_1.0": texts["1.0"][0][:120], "first_1.05": texts["1.05"][0][:120]}


def tokens_per_second(loaded, batch: int, new_tokens: int) -> float:
    """Greedy decoding of exactly `new_tokens` tokens per sequence; tokens/s over the whole batch."""
    import torch

    from model.generation import prepare_inputs

    inputs = prepare_inputs(loaded, _conversations(batch, with_image=False))
    pad = loaded.tokenizer.pad_token_id
    with torch.inference_mode():
        loaded.model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False, pad_token_id=pad)  # warm-up
        if loaded.device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        output = loaded.model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                       temperature=None, top_p=None, top_k=None, pad_token_id=pad)
        if loaded.device.startswith("cuda"):
            torch.cuda.synchronize()
    generated = (output.shape[1] - inputs["input_ids"].shape[1]) * output.shape[0]
    return round(generated / (time.perf_counter() - started), 2)


# ------------------------------------------------------------------------------------------- the mixed FSDP step


def fsdp_worker(model_dir: str, out_file: str, steps: int = 2, vision_fix: bool = True) -> None:
    """One rank of the mixed-modality FSDP2 check (started by torchrun): full language-model training, vision frozen
    (the full config), micro-batches alternating image / text-only across ranks, forward + backward per step."""
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from model.modality import run_vision_on_text_batches

    cuda = torch.cuda.is_available()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = f"cuda:{int(os.environ['LOCAL_RANK'])}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    from datetime import timedelta

    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=float(os.environ.get(
        "GPU_CHECK_COLLECTIVE_TIMEOUT", "120"))))
    mesh = init_device_mesh("cuda" if cuda else "cpu", (world,))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.bfloat16 if cuda else torch.float32)
    processor = AutoProcessor.from_pretrained(model_dir)
    for name, param in model.named_parameters():
        param.requires_grad_("visual" not in name)
    hook = run_vision_on_text_batches(model) if vision_fix else None
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    core = model.model
    for block in list(core.visual.blocks) + list(core.language_model.layers):
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    tokens = 1024 if cuda else 96
    results = []
    started = time.perf_counter()
    for step in range(steps):
        with_image = (rank + step) % 2 == 0
        batch = training_batch(processor, 1, tokens, device, image=with_image)
        loss = supervised_loss(model, batch)
        loss.backward()
        grad_dtypes = sorted({str(p.grad.dtype) for p in model.parameters() if p.grad is not None})
        model.zero_grad(set_to_none=True)
        results.append({"step": step, "image": with_image, "loss": round(float(loss), 4), "grad_dtypes": grad_dtypes})
    seconds = time.perf_counter() - started
    gathered = [None] * world
    dist.all_gather_object(gathered, {"rank": rank, "steps": results, "dummy_runs": hook.dummy_runs if hook else 0})
    if rank == 0:
        Path(out_file).write_text(json.dumps({"ok": True, "world": world, "seconds": round(seconds, 2),
                                              "ranks": gathered}) + "\n", encoding="utf-8")
    dist.destroy_process_group()


def zero3_worker(model_dir: str, out_file: str, steps: int = 2, vision_fix: bool = True) -> None:
    """One rank of the mixed-modality DeepSpeed ZeRO-3 check: the mlp config (language MLPs trained, the rest
    frozen), weights sharded while loading (zero.Init), image / text-only micro-batches alternating across ranks."""
    from datetime import timedelta

    import deepspeed
    import torch
    import torch.distributed as dist
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from transformers.integrations import HfDeepSpeedConfig

    from model.modality import run_vision_on_text_batches

    cuda = torch.cuda.is_available()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = f"cuda:{int(os.environ['LOCAL_RANK'])}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=float(os.environ.get(
        "GPU_CHECK_COLLECTIVE_TIMEOUT", "120"))))
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
    config = {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "bf16": {"enabled": cuda},
              "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0},
              "optimizer": {"type": "AdamW", "params": {"lr": 1e-5, "torch_adam": True}}}
    keep_alive = HfDeepSpeedConfig(config)  # noqa: F841 -- from_pretrained shards while loading while it lives
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.bfloat16 if cuda else torch.float32)
    for name, param in model.named_parameters():
        param.requires_grad_(bool(re.search(r"language_model\.layers\.\d+\.mlp\.", name)))
    hook = run_vision_on_text_batches(model) if vision_fix else None
    engine, *_ = deepspeed.initialize(model=model, model_parameters=[p for p in model.parameters() if p.requires_grad],
                                      config=config)
    processor = AutoProcessor.from_pretrained(model_dir)
    tokens = 1024 if cuda else 96
    results = []
    started = time.perf_counter()
    for step in range(steps):
        with_image = (rank + step) % 2 == 0
        loss = supervised_loss(engine, training_batch(processor, 1, tokens, device, image=with_image))
        engine.backward(loss)
        engine.step()
        results.append({"step": step, "image": with_image, "loss": round(float(loss.detach()), 4)})
    seconds = time.perf_counter() - started
    gathered = [None] * world
    dist.all_gather_object(gathered, {"rank": rank, "steps": results, "dummy_runs": hook.dummy_runs if hook else 0})
    if rank == 0:
        Path(out_file).write_text(json.dumps({"ok": True, "world": world, "seconds": round(seconds, 2),
                                              "ranks": gathered}) + "\n", encoding="utf-8")
    dist.destroy_process_group()


def fsdp_mixed_step(model_dir: str, processes: int = 2, timeout: float = 300.0, vision_fix: bool = True,
                    engine: str = "fsdp") -> dict:
    """Run `fsdp_worker` (or `zero3_worker`, engine="zero3") on `processes` ranks (GPUs when present, else CPU
    processes over gloo) through torchrun."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-mixed-") as scratch:
        out_file = Path(scratch) / "result.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "model.gpu_check", f"--{engine}-worker", "--model", str(model_dir), "--out", str(out_file)]
        if not vision_fix:
            command.append("--no-vision-fix")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"no result within {timeout:.0f} s (hung)"}
        if done.returncode != 0 or not out_file.is_file():
            return {"ok": False, "error": f"torchrun exit {done.returncode}: {done.stderr[-1500:]}"}
        return json.loads(out_file.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------- the whole check


def run_check(model: str | None, device: str = "auto", fsdp_cpu: bool = False) -> dict:
    import torch

    from model.loading import load_model, resolve_device

    device = resolve_device(device)
    sizes = SIZES["cuda" if device.startswith("cuda") else "cpu"]
    scratch = None
    if model is None:
        from model.tiny import build_tiny_checkpoint

        scratch = tempfile.TemporaryDirectory(prefix="gpu-check-tiny-")
        model = str(build_tiny_checkpoint(scratch.name, seed=0))
    try:
        _reset_peak(device)
        loaded = load_model(model, device=device, dtype="bfloat16" if device.startswith("cuda") else "float32")
        result = {
            "model": str(model), "device": device, "torch": torch.__version__,
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "attn_implementation": loaded.attn_implementation, "dtype": str(loaded.dtype).removeprefix("torch."),
            "load_seconds": round(loaded.load_seconds, 2), "load_peak_gb": round(_peak_memory_gb(device), 2),
            "sizes": sizes,
        }
        result["repetition_penalty"] = repetition_penalty_outputs(loaded, sizes["new_tokens"])
        result["tokens_per_second"] = {f"batch_{b}": tokens_per_second(loaded, b, sizes["new_tokens"]) for b in (1, 8)}
        counts = parameter_counts(loaded.model.config, sizes["lora_r"])
        step = lora_step(loaded, sizes)
        step["estimated_gb"] = round(estimate(loaded.model.config, counts, step["batch"], step["tokens"])["lora_step_peak"], 2)
        result["lora_step"] = step
        del loaded
        if result["gpus"] >= 2 or fsdp_cpu:
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            result["fsdp_mixed_step"] = fsdp_mixed_step(model, processes=2)
        else:
            result["fsdp_mixed_step"] = {"ok": None, "skipped": "needs 2+ GPUs (or --fsdp-cpu)"}
        return result
    finally:
        if scratch is not None:
            scratch.cleanup()


def estimate_table() -> dict:
    config = qwen25_vl_7b_config()
    counts = parameter_counts(config, lora_r=64)
    figures = estimate(config, counts, batch=4, tokens=3072)
    return {"parameters": counts, "estimated_gb_batch4x3072": {k: round(v, 1) for k, v in figures.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint directory or hub id (default: a tiny checkpoint built now)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--fsdp-cpu", action="store_true", help="run the mixed-modality FSDP step on 2 CPU processes")
    parser.add_argument("--estimate-only", action="store_true", help="print the 7B parameter counts and memory estimates")
    parser.add_argument("--fsdp-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--zero3-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-vision-fix", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fsdp_worker or args.zero3_worker:
        worker = fsdp_worker if args.fsdp_worker else zero3_worker
        worker(args.model, args.out, vision_fix=not args.no_vision_fix)
        return 0
    # Libraries print notices on stdout (DeepSpeed's accelerator line, progress text): they go to stderr, so that
    # stdout carries the one JSON line alone.
    with contextlib.redirect_stdout(sys.stderr):
        result = estimate_table() if args.estimate_only else run_check(args.model, args.device, args.fsdp_cpu)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
