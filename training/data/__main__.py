"""CLI: build training files from real data, and show what is inside one.

    python -m training.data build --source formalgeo7k --path ../shared/data/formalgeo7k_v1 --text-only \
        --target theorem --out runs/data/fg7k-theorem.jsonl
    python -m training.data build --source records --path runs/data/fg7k-theorem.jsonl --target plain \
        --out runs/data/fg7k-plain.jsonl            # the matched control, same problems
    python -m training.data stats runs/data/fg7k-theorem.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys

from training.data.build import SOURCES, TARGETS, BuildOptions, build
from training.data.stats import file_stats
from training.loaders.hf import parse_columns
from training.records import RecordError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="load a source and write records with one kind of training target")
    b.add_argument("--source", required=True, choices=SOURCES, type=lambda name: {"formalgeo": "formalgeo7k"}.get(name, name),
                   help="dataset format to read (formalgeo is accepted for formalgeo7k)")
    b.add_argument("--path", required=True, help="file or folder of the source (hf: saved dataset, data files or hub id)")
    b.add_argument("--target", required=True, choices=TARGETS,
                   help="theorem: <Cond, Map, Exec> steps; plain: the same derivation as prose; answer: the Answer line alone")
    b.add_argument("--out", required=True, help="output JSONL; rejects go to OUT.rejects.jsonl")
    b.add_argument("--split", help="formalgeo7k: train|val|test (official split file); hf: dataset split")
    b.add_argument("--text-only", action="store_true", help="ignore diagrams (FormalGeo7k has them for test only)")
    b.add_argument("--skip-bad", action="store_true", help="write bad records to the rejects file and go on")
    b.add_argument("--limit", type=int, help="only the first N records")
    b.add_argument("--unmatched", action="store_true",
                   help="formalgeo7k --target answer: keep problems without an accepted theorem target too")
    b.add_argument("--workers", type=int, default=2, help="processes for FormalGeo replays (default: 2)")
    b.add_argument("--timeout", type=float, default=30.0, help="seconds per FormalGeo replay")
    b.add_argument("--shuffle-choices", action="store_true", help="permute choices (gold label remapped)")
    b.add_argument("--instructions", action="store_true", help="draw an instruction from the diversity pool")
    b.add_argument("--seed", type=int, default=0, help="seed of --shuffle-choices and --instructions (default: 0)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("--answers", help="geoqa G-LLaVA format: the answers file (default: beside the questions)")
    b.add_argument("--image-root", help="geoqa G-LLaVA/R1-V formats: folder holding Geo170K's test/<i>.png")
    b.add_argument("--diagrams", help="formalgeo7k: diagrams folder (default: found next to the data)")
    b.add_argument("--split-file", help="formalgeo7k: split file (default: problem_split_3_1_1_619.json nearby)")
    b.add_argument("--column", action="append", metavar="FIELD=COLUMN", help="hf: map a record field to a column")
    b.add_argument("--images-dir", help="hf: where decoded images are written (default: OUT's folder/images)")
    b.add_argument("--teacher-url", help="theorem target for records without steps (MATH): rewrite the reference "
                                         "solution with this OpenAI-compatible endpoint")
    b.add_argument("--teacher-model", help="model name the teacher endpoint serves")
    b.add_argument("--teacher-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    b.add_argument("--teacher-cache", default="runs/teacher-cache", help="disk cache of teacher answers")
    s = sub.add_parser("stats", help="counts, steps per problem, theorems used, rejects by reason")
    s.add_argument("file")
    args = parser.parse_args(argv)

    if args.command == "stats":
        print(json.dumps(file_stats(args.file), ensure_ascii=False, indent=2))
        return 0

    loader: dict = {}
    if args.source == "geoqa":
        loader.update({k: v for k, v in (("answers", args.answers), ("image_root", args.image_root)) if v})
    elif args.source == "formalgeo7k":
        loader.update({k: v for k, v in (("diagrams", args.diagrams), ("split_file", args.split_file)) if v})
    elif args.source == "hf":
        from pathlib import Path

        loader["columns"] = parse_columns(args.column)
        loader["image_dir"] = args.images_dir or str(Path(args.out).parent / "images")
    options = BuildOptions(split=args.split, text_only=args.text_only, skip_bad=args.skip_bad, limit=args.limit,
                           matched=not args.unmatched, workers=args.workers, timeout=args.timeout,
                           shuffle_choices=args.shuffle_choices, instructions=args.instructions, seed=args.seed,
                           progress=not args.quiet, loader=loader)
    if args.teacher_url:
        from training.teacher import TeacherConfig

        if not args.teacher_model:
            parser.error("--teacher-url needs --teacher-model")
        options.teacher = TeacherConfig(base_url=args.teacher_url, model=args.teacher_model,
                                        api_key_env=args.teacher_key_env, cache_dir=args.teacher_cache)
    try:
        summary = build(args.source, args.path, args.target, args.out, options)
    except (RecordError, FileNotFoundError, ValueError) as err:
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
