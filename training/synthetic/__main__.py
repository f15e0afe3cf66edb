"""CLI: python -m training.synthetic --n 20000 --seed 0 --out DIR [--test-fraction 0.05] [--workers 2]"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synthetic", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                     description="Write the synthetic geometry curriculum: <split>.jsonl, "
                                                 "images/<split>/*.png and manifest.json under --out.")
    parser.add_argument("--n", type=int, required=True, help="problems in total over all splits")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same bytes")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--test-fraction", type=float, default=0.05, help="share of --n for each test split")
    parser.add_argument("--workers", type=int, default=1, help="processes; the output is the same for any count")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    from .generate import GenerationError, generate  # after parsing: drawing and sympy take seconds to import

    try:
        manifest = generate(args.n, args.seed, args.out, args.test_fraction, args.workers, progress=not args.quiet)
    except (ValueError, GenerationError) as err:
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return 2
    print(json.dumps({split: info["count"] for split, info in manifest["splits"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
