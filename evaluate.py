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
import sys
from pathlib import Path

from model.backends import BACKENDS
from training.evaluation.benchmarks import DEFAULT_MODE
# The evaluation modules are imported by the commands that use them: they pull in sympy (1+ s), and --help
# must answer at once.


def request_from_args(args) -> "EvalRequest":
    """The command line as an evaluation request; every profile flag left out stays "as trained"."""
    from training.evaluation.errors import EvaluationError
    from training.evaluation.run import EvalRequest

    overrides = {"max_new_tokens": args.max_new_tokens, "repetition_penalty": args.repetition_penalty,
                 "retrieval_mode": args.retrieval_mode, "retrieval_query": args.retrieval_query,
                 "min_pixels": args.min_pixels, "max_pixels": args.max_pixels}
    if args.retrieval == "off":
        overrides["prompt_theorems"] = 0
    elif args.top_k is not None:
        overrides["prompt_theorems"] = args.top_k
    elif args.retrieval == "on":
        raise EvaluationError("--retrieval on needs --top-k N (how many theorems to list); without either flag the "
                         "prompt lists as many as the checkpoint was trained with")
    if args.point_names == "keep":
        overrides["point_names"] = None
    if args.samples < 1:
        raise EvaluationError(f"--samples must be >= 1, got {args.samples}")
    # N > 1: the greedy chain and N - 1 sampled in one batch; the tutor's selection (model.selection) picks one
    sampling = {"samples": args.samples, "temperature": args.temperature, "top_p": args.top_p,
                "seed": args.seed} if args.samples > 1 else {}
    return EvalRequest(
        benchmark=args.benchmark, data=str(args.data), out=args.out, model=str(args.model or ""),
        adapter=args.adapter, backend=args.backend, base_url=args.base_url, outputs=args.outputs, mode=args.mode,
        limit=args.limit, splits=[args.split] if args.split else [], text_only=args.text_only,
        batch_size=args.batch_size, probe=args.probe, probe_seed=args.probe_seed, bank=args.bank, device=args.device,
        threads=args.threads, progress=not args.quiet, profile_dir=args.profile, overrides=overrides,
        sampling=sampling)


def cmd_run(args) -> int:
    from training.evaluation.run import run_evaluation

    summary = run_evaluation(request_from_args(args))
    if summary is None:
        return 0  # another rank of a sharded run writes the summary
    low, high = summary["accuracy_ci95"]
    print(json.dumps({"out": str(args.out), "benchmark": args.benchmark, "mode": summary["settings"]["mode"],
                      "n": summary["n"], "accuracy": summary["accuracy"], "ci95": [low, high],
                      "tutor_accuracy": summary["tutor_accuracy"], "parse_failures": summary["parse_failures"]}))
    return 0


def cmd_summarize(args) -> int:
    from training.evaluation.report import load_run, write_summary
    from training.evaluation.runner import RUN_FILE

    out_dir = Path(args.dir)
    run = json.loads((out_dir / RUN_FILE).read_text(encoding="utf-8")) if (out_dir / RUN_FILE).exists() else {}
    lines = load_run(out_dir)
    summary = write_summary(out_dir, lines, run.get("settings"))
    print(json.dumps({"out": str(out_dir), "n": summary["n"], "accuracy": summary["accuracy"]}))
    return 0


def cmd_compare(args) -> int:
    from training.evaluation.errors import EvaluationError
    from training.evaluation.report import compare_runs, load_run, render_comparison

    lines_a = [l for l in load_run(args.run_a) if l.get("variant", "original") == "original"]
    lines_b = [l for l in load_run(args.run_b) if l.get("variant", "original") == "original"]
    result = compare_runs(lines_a, lines_b, n_resamples=args.resamples, seed=args.seed, field=args.field)
    if result["n"] == 0:
        raise EvaluationError(f"{args.run_a} and {args.run_b} share no problem ids; nothing to compare")
    print(render_comparison(result, str(args.run_a), str(args.run_b)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="evaluate a model on a benchmark (resumable; shardable with accelerate launch)")
    run.add_argument("--benchmark", required=True, choices=sorted(DEFAULT_MODE),
                     type=lambda name: {"formalgeo7k": "formalgeo"}.get(name, name),
                     help="which loader reads --data (formalgeo7k is accepted for formalgeo)")
    run.add_argument("--data", required=True, help="benchmark file or folder (e.g. ../shared/data/math/math500_test.jsonl)")
    run.add_argument("--model", default="", help="checkpoint folder, hub id, or served model name (openai backend)")
    run.add_argument("--adapter", default=None, help="PEFT LoRA adapter folder applied on --model")
    run.add_argument("--out", required=True, help="run folder; rerunning with the same folder resumes")
    run.add_argument("--mode", choices=("choice", "direct"), default=None,
                     help="choice: options shown, letter graded; direct: no options, value graded "
                          "(default: choice for geoqa/synthetic, direct otherwise)")
    run.add_argument("--limit", type=int, default=None, help="first N problems (per split for a synthetic folder)")
    run.add_argument("--split", default=None, help="formalgeo: train/val/test; synthetic: one split name")
    run.add_argument("--batch-size", type=int, default=8, help="problems in the model's batch at once; with greedy decoding on the local backend a "
                          "problem whose chain ends hands its slot to the next one (default: 8)")
    # Every setting below defaults to what the checkpoint was trained with (its serving_profile.json, or the
    # documented default of model.profile for a checkpoint without one); naming one overrides it, and run.json
    # records what was used.
    run.add_argument("--profile", default=None,
                     help="folder whose serving_profile.json to use (default: the --adapter's, else the --model's)")
    run.add_argument("--max-new-tokens", type=int, default=None, help="default: as trained")
    run.add_argument("--repetition-penalty", type=float, default=None, help="default: as trained (1.0)")
    run.add_argument("--backend", choices=BACKENDS, default="local",
                     help="local transformers, an OpenAI-compatible server, vLLM, or replay of saved outputs (default: local)")
    run.add_argument("--samples", type=int, default=1,
                     help="chains per problem: the greedy one and N-1 sampled in one batch, selected as the tutor "
                          "does (grounded-verified steps, then agreement); 1: greedy alone")
    run.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (with --samples > 1)")
    run.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling (with --samples > 1)")
    run.add_argument("--seed", type=int, default=0, help="sampling seed (with --samples > 1)")
    run.add_argument("--base-url", default=None, help="openai backend: server URL (default $OPENAI_BASE_URL)")
    run.add_argument("--outputs", default=None, help="replay backend: JSONL of {id, output}")
    run.add_argument("--retrieval", choices=("on", "off"), default=None,
                     help="theorems from the bank in the prompt (default: as trained; off: none)")
    run.add_argument("--retrieval-mode", choices=("hybrid", "bm25", "dense"), default=None,
                     help="how the bank ranks theorems (default: as trained; bm25 needs no embedding model)")
    run.add_argument("--retrieval-query", choices=("question", "question+choices"), default=None,
                     help="what the bank is searched with (default: as trained)")
    run.add_argument("--top-k", type=int, default=None, help="theorems listed in the prompt (default: as trained)")
    run.add_argument("--bank", default=None, help="theorem bank SQLite file (default: the cache built from the seeds)")
    run.add_argument("--probe", action="store_true", help="also evaluate shuffled / renamed / renumbered variants")
    run.add_argument("--probe-seed", type=int, default=0, help="seed of the --probe variants (default: 0)")
    run.add_argument("--min-pixels", type=int, default=None, help="default: as trained")
    run.add_argument("--max-pixels", type=int, default=None, help="default: as trained")
    run.add_argument("--text-only", action="store_true", help="ignore diagrams even where they exist")
    run.add_argument("--point-names", choices=("rename", "keep"), default="rename",
                     help="rename point letters a from-scratch checkpoint never saw (its profile's point_names) "
                          "into ones it knows, as the tutor does; keep: show them as written")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    run.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    summarize = sub.add_parser("summarize", help="rebuild summary.json and report.md from predictions.jsonl")
    summarize.add_argument("dir")
    summarize.set_defaults(func=cmd_summarize)

    compare = sub.add_parser("compare", help="paired comparison of two runs on their common problems")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    compare.add_argument("--field", choices=("correct", "tutor_correct"), default="correct",
                         help="correct: the model's Answer line; tutor_correct: the checker's value (default: correct)")
    compare.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    compare.add_argument("--json", default=None, help="also write the comparison as JSON here")
    compare.set_defaults(func=cmd_compare)

    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from model.backends import BackendError
    from model.loading import ModelLoadError
    from model.profile import ProfileError
    from training.evaluation.errors import EvaluationError
    from training.records import RecordError

    try:
        return args.func(args)
    except (EvaluationError, RecordError, ProfileError, ModelLoadError, BackendError, FileNotFoundError) as err:
        print(f"evaluate.py: {err}", file=sys.stderr)  # bad input: one line that names the file, record or flag
        return 2


if __name__ == "__main__":
    sys.exit(main())
