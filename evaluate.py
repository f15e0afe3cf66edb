"""Batch evaluation of a tutor model on GeoQA, FormalGeo7k, MATH and the synthetic curriculum.

    python evaluate.py run --benchmark geoqa --data ../shared/data/geoqa_test_en/geoqa_test.jsonl \\
        --model MODEL [--adapter DIR] --out runs/geoqa-choice [--mode choice|direct] [--probe]
    accelerate launch --cpu --num_processes 2 evaluate.py run ...      # sharded, same outputs
    python evaluate.py compare runs/theorem runs/plain                  # paired bootstrap + McNemar
    python evaluate.py summarize runs/geoqa-choice                      # rebuild summary.json / report.md

A run writes DIR/predictions.jsonl (one line per problem, appended as finished), DIR/summary.json,
DIR/report.md and DIR/run.json (settings). Rerunning the same command resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from training.evaluation.benchmarks import DEFAULT_MODE, load_benchmark
from training.evaluation.generators import BACKENDS
from training.evaluation.report import compare_runs, load_run, render_comparison, write_summary
from training.evaluation.runner import (RUN_FILE, EvalItem, RunSettings, check_run_file, evaluate_items,
                                        fingerprint_file)


def prompt_version() -> str:
    """A short id of the prompt text: any change to the instructions changes results, so it is recorded."""
    import hashlib

    from model import prompting

    explicit = getattr(prompting, "PROMPT_VERSION", None)
    if explicit:
        return str(explicit)
    text = prompting.SYSTEM_INTRO + "\n" + prompting.FORMAT_INSTRUCTIONS
    return "v1-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def build_items(records, benchmark: str, mode: str, probe: bool, probe_seed: int,
                out_dir: Path) -> tuple[list[EvalItem], str]:
    from training.evaluation.probes import probe_variants, synthetic_hooks

    hooks = synthetic_hooks(out_dir / "probe_images") if probe and benchmark == "synthetic" else (None, None, "")
    items = []
    for record in records:
        record_mode = "choice" if mode == "choice" and record.choices else "direct"
        items.append(EvalItem(key=record.id, record=record, variant="original", mode=record_mode))
        if probe:
            for variant, probed in probe_variants(record, benchmark, probe_seed, hooks):
                if variant == "shuffle" and record_mode != "choice":
                    continue  # choices are not shown in direct mode, so their order cannot matter
                items.append(EvalItem(key=f"{record.id}#{variant}", record=probed, variant=variant, mode=record_mode))
    return items, hooks[2]


class LazyGenerator:
    """Loads the model on the first batch only, so resuming a finished run costs no model load."""

    def __init__(self, factory):
        self.factory, self.generator = factory, None

    def __call__(self, prompts):
        if self.generator is None:
            self.generator = self.factory()
        return self.generator(prompts)


def cmd_run(args) -> int:
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    mode = args.mode or DEFAULT_MODE[args.benchmark]
    if args.backend in ("local", "vllm") and not args.model and not args.adapter:
        raise SystemExit("--model is required (a checkpoint folder or hub id; `python -m model.tiny OUT` builds a tiny one)")

    records = load_benchmark(args.benchmark, args.data, limit=args.limit, split=args.split, text_only=args.text_only)
    if not records:
        raise SystemExit(f"{args.data} gave no records for --benchmark {args.benchmark}")
    settings = RunSettings(
        benchmark=args.benchmark, data=str(args.data), model=str(args.model or ""), adapter=args.adapter,
        backend=args.backend, mode=mode, retrieval=args.retrieval == "on", retrieval_mode=args.retrieval_mode,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, limit=args.limit, probe=args.probe,
        probe_seed=args.probe_seed, min_pixels=args.min_pixels, max_pixels=args.max_pixels,
        prompt_version=prompt_version(), data_fingerprint=fingerprint_file(args.data), base_url=args.base_url,
    )
    if settings.min_pixels is None or settings.max_pixels is None:
        from model.images import ImageOptions, trained_image_options

        # A checkpoint trained by train.py is evaluated with the image bounds it was trained with.
        defaults = trained_image_options(args.adapter or args.model) if args.backend == "local" else ImageOptions()
        settings.min_pixels = settings.min_pixels or defaults.min_pixels
        settings.max_pixels = settings.max_pixels or defaults.max_pixels
    if args.point_names == "rename" and args.backend == "local":
        from model.point_names import load_alphabet

        settings.point_letters = load_alphabet(args.adapter or args.model)
    out_dir = Path(args.out)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        check_run_file(out_dir, settings)  # before loading a model: fail fast on a mismatched folder
    items, probe_note = build_items(records, args.benchmark, mode, args.probe, args.probe_seed, out_dir)
    if probe_note and rank == 0:
        print(f"probes: {probe_note}", file=sys.stderr)

    from theorem_bank import open_bank
    from training.evaluation.generators import open_generator

    # A bank file of one's own (--bank) that is only used lexically is built without embeddings; the shared
    # default file is left to its usual build, so that hybrid retrieval elsewhere keeps its dense half.
    lexical_only = args.retrieval == "off" or args.retrieval_mode == "bm25"
    bank = open_bank(args.bank, dense=False if args.bank and lexical_only else None)
    device = args.device
    if device == "auto" and world_size > 1:
        import torch

        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    generator = LazyGenerator(lambda: open_generator(settings, outputs=args.outputs, device=device))
    lines = evaluate_items(items, settings, out_dir, generator, bank=bank, rank=rank, world_size=world_size,
                           progress=not args.quiet)
    if lines is None:
        return 0
    summary = write_summary(out_dir, lines, settings.to_dict())
    low, high = summary["accuracy_ci95"]
    print(json.dumps({"out": str(out_dir), "benchmark": args.benchmark, "mode": mode, "n": summary["n"],
                      "accuracy": summary["accuracy"], "ci95": [low, high], "tutor_accuracy": summary["tutor_accuracy"],
                      "parse_failures": summary["parse_failures"]}))
    return 0


def cmd_summarize(args) -> int:
    out_dir = Path(args.dir)
    run = json.loads((out_dir / RUN_FILE).read_text(encoding="utf-8")) if (out_dir / RUN_FILE).exists() else {}
    lines = load_run(out_dir)
    summary = write_summary(out_dir, lines, run.get("settings"))
    print(json.dumps({"out": str(out_dir), "n": summary["n"], "accuracy": summary["accuracy"]}))
    return 0


def cmd_compare(args) -> int:
    lines_a = [l for l in load_run(args.run_a) if l.get("variant", "original") == "original"]
    lines_b = [l for l in load_run(args.run_b) if l.get("variant", "original") == "original"]
    result = compare_runs(lines_a, lines_b, n_resamples=args.resamples, seed=args.seed, field=args.field)
    if result["n"] == 0:
        raise SystemExit(f"{args.run_a} and {args.run_b} share no problem ids; nothing to compare")
    print(render_comparison(result, str(args.run_a), str(args.run_b)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="evaluate a model on a benchmark (resumable; shardable with accelerate launch)")
    run.add_argument("--benchmark", required=True, choices=sorted(DEFAULT_MODE))
    run.add_argument("--data", required=True, help="benchmark file or folder (e.g. ../shared/data/math/math500_test.jsonl)")
    run.add_argument("--model", default="", help="checkpoint folder, hub id, or served model name (openai backend)")
    run.add_argument("--adapter", default=None, help="PEFT LoRA adapter folder applied on --model")
    run.add_argument("--out", required=True, help="run folder; rerunning with the same folder resumes")
    run.add_argument("--mode", choices=("choice", "direct"), default=None,
                     help="choice: options shown, letter graded; direct: no options, value graded "
                          "(default: choice for geoqa/synthetic, direct otherwise)")
    run.add_argument("--limit", type=int, default=None, help="first N problems (per split for a synthetic folder)")
    run.add_argument("--split", default=None, help="formalgeo: train/val/test; synthetic: one split name")
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("--max-new-tokens", type=int, default=512)
    run.add_argument("--backend", choices=BACKENDS, default="local")
    run.add_argument("--base-url", default=None, help="openai backend: server URL (default $OPENAI_BASE_URL)")
    run.add_argument("--outputs", default=None, help="replay backend: JSONL of {id, output}")
    run.add_argument("--retrieval", choices=("on", "off"), default="on", help="theorems from the bank in the prompt")
    run.add_argument("--retrieval-mode", choices=("hybrid", "bm25", "dense"), default="hybrid",
                     help="how the bank ranks theorems (bm25 needs no embedding model)")
    run.add_argument("--top-k", type=int, default=3, help="theorems retrieved per problem")
    run.add_argument("--bank", default=None, help="theorem bank SQLite file (default: the cache built from the seeds)")
    run.add_argument("--probe", action="store_true", help="also evaluate shuffled / renamed / renumbered variants")
    run.add_argument("--probe-seed", type=int, default=0)
    run.add_argument("--min-pixels", type=int, default=None)
    run.add_argument("--max-pixels", type=int, default=None)
    run.add_argument("--text-only", action="store_true", help="ignore diagrams even where they exist")
    run.add_argument("--point-names", choices=("rename", "keep"), default="rename",
                     help="rename point letters a from-scratch checkpoint never saw (its point_names.json) into "
                          "ones it knows, as the tutor does; keep: show them as written")
    run.add_argument("--device", default="auto")
    run.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    summarize = sub.add_parser("summarize", help="rebuild summary.json and report.md from predictions.jsonl")
    summarize.add_argument("dir")
    summarize.set_defaults(func=cmd_summarize)

    compare = sub.add_parser("compare", help="paired comparison of two runs on their common problems")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    compare.add_argument("--field", choices=("correct", "tutor_correct"), default="correct")
    compare.add_argument("--resamples", type=int, default=10_000)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--json", default=None, help="also write the comparison as JSON here")
    compare.set_defaults(func=cmd_compare)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
