"""Training throughput: our trainer versus TRL's SFTTrainer on the same tiny Qwen2.5-VL, data, batch and lengths.

    python bench/train_throughput.py [--steps 30] [--batch-size 4] [--threads 1]

Prints ONE JSON line: real (non-padding) tokens per second (wall and per CPU-second) of each, their ratio
(target >= 1.0), the share of
non-padding tokens per batch (ours groups by length; target >= 0.85) and peak memory. Each trainer runs in its
own process (spawned), so imports are outside the timing and peak memory is per trainer.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "train"
MIN_PIXELS, MAX_PIXELS = 4 * 28 * 28, 16 * 28 * 28


def make_curriculum(out: Path, n: int) -> Path:
    """A small synthetic curriculum (varied question and target lengths, every problem with a diagram); the
    committed test fixture when the generator is unavailable."""
    try:
        from training.synthetic.generate import generate
    except ImportError:
        return FIXTURE
    generate(int(n / 0.8) + 1, 0, out, 0.05, 1, progress=False)
    return out


def bench_records(root: Path, n: int):
    from training.records import read_records

    base = list(read_records(root / "train.jsonl"))
    copies = [r.__class__(**{**r.to_dict(), "id": f"{r.id}-{i}"}) for i in range(n // len(base) + 1) for r in base]
    return copies[:n], root


def count_batches(collator, seen: list):
    def wrapped(features):
        batch = collator(features)
        seen.append((int(batch["attention_mask"].sum()), batch["attention_mask"].numel()))
        return batch
    return wrapped


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_ours(model_dir: str, args) -> dict:
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from training.collator import ChatEncoder, SFTCollator, SFTDataset, measure_and_filter, record_examples
    from training.config import load_config
    from training.trainer import make_trainer, training_arguments

    torch.set_num_threads(args.threads)
    config = load_config(REPO / "configs" / "tiny-test.yaml", [
        f"model.path={model_dir}", "model.scratch=null", f"train.batch_size={args.batch_size}", "train.grad_accum=1",
        f"train.max_steps={args.steps}", f"train.save_steps={args.steps * 10}", "train.logging_steps=1000",
        "tuning.train_vision=false", "train.lr=1e-3"])
    processor = AutoProcessor.from_pretrained(model_dir)
    encoder = ChatEncoder(processor, MIN_PIXELS, MAX_PIXELS)
    records, root = bench_records(Path(args.data_dir), args.examples)
    examples = measure_and_filter(record_examples(records, "theorem", root), encoder, 4096)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        targs = training_arguments(config, Path(tmp), has_eval=False)
        targs.disable_tqdm = True
        seen: list = []
        trainer = make_trainer(model, targs, SFTDataset(examples, encoder), None,
                               count_batches(SFTCollator(processor.tokenizer.pad_token_id), seen), processor,
                               seed=0, group=True)
        started, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "batches": seen, "peak_mb": peak_memory_mb()}


def run_trl(model_dir: str, args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from trl import SFTConfig, SFTTrainer

    from model.images import ImageOptions, load_image
    from model.profile import default_profile
    from model.prompting import problem_messages
    from training.targets import target_text

    torch.set_num_threads(args.threads)
    processor = AutoProcessor.from_pretrained(model_dir)
    processor.image_processor.size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    options = ImageOptions(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    rows = []
    records, root = bench_records(Path(args.data_dir), args.examples)
    for record in records:
        image = str(root / record.image) if record.image else None
        prompt = problem_messages(record.question, record.choices, image, None, default_profile().replace(prompt_theorems=0))
        for message in prompt:  # TRL fills {"type": "image"} placeholders from the "images" column
            for part in message["content"]:
                part.pop("image", None)
        rows.append({"prompt": prompt,
                     "completion": [{"role": "assistant", "content": [{"type": "text",
                                                                        "text": target_text(record, "theorem")}]}],
                     "images": [load_image(image, options)] if image else []})
    dataset = Dataset.from_list(rows)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)
    for name, param in model.named_parameters():
        param.requires_grad_("visual" not in name)
    with tempfile.TemporaryDirectory() as tmp:
        config = SFTConfig(output_dir=tmp, per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
                           max_steps=args.steps, learning_rate=1e-3, max_length=None, logging_steps=1000,
                           save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(),
                           gradient_checkpointing=False, disable_tqdm=True, seed=0, dataloader_num_workers=0,
                           optim="adamw_torch", lr_scheduler_type="cosine", warmup_steps=0.1)
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)
        seen: list = []
        trainer.data_collator = count_batches(trainer.data_collator, seen)
        started, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "batches": seen, "peak_mb": peak_memory_mb()}


def _child(which: str, model_dir: str, args, queue) -> None:
    sys.path.insert(0, str(REPO))
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    queue.put((run_ours if which == "ours" else run_trl)(model_dir, args))


def in_process(which: str, model_dir: str, args) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(which, model_dir, args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--examples", type=int, default=160, help="training problems (synthetic curriculum)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trainer (1: steadier figures)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from model.tiny import build_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_tiny_checkpoint(Path(tmp) / "tiny", seed=0))
        args.data_dir = str(make_curriculum(Path(tmp) / "curriculum", args.examples))
        ours = in_process("ours", model_dir, args)
        trl = in_process("trl", model_dir, args)

    def figures(run):
        real = sum(r for r, _ in run["batches"])
        total = sum(t for _, t in run["batches"])
        return real / run["seconds"], real / run["cpu_seconds"], real / total

    ours_tps, ours_cpu_tps, ours_share = figures(ours)
    trl_tps, trl_cpu_tps, trl_share = figures(trl)
    import torch

    # Real (non-padding) tokens per second. On a shared machine wall time depends on the neighbours; with one
    # thread, tokens per CPU-second is what an idle machine would show, so the ratio is taken from it.
    print(json.dumps({
        "bench": "train_throughput", "model": "model.tiny default (hidden 64, 2 layers)",
        "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": args.threads,
        "examples": args.examples, "batch_size": args.batch_size, "steps": args.steps,
        "ours_tokens_per_s": round(ours_tps, 1), "trl_tokens_per_s": round(trl_tps, 1),
        "ours_tokens_per_cpu_s": round(ours_cpu_tps, 1), "trl_tokens_per_cpu_s": round(trl_cpu_tps, 1),
        "ratio": round(ours_cpu_tps / trl_cpu_tps, 3), "ratio_wall": round(ours_tps / trl_tps, 3),
        "ours_nonpadding_share": round(ours_share, 3), "trl_nonpadding_share": round(trl_share, 3),
        "ours_peak_mb": round(ours["peak_mb"], 1), "trl_peak_mb": round(trl["peak_mb"], 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
