"""Command line for the theorem bank: python -m theorem_bank build | search | show | add | export | stats."""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

from theorem_bank.safe_math import MathError
from theorem_bank.schema import DOMAINS, TheoremError, load_yaml_file, validate_theorems
from theorem_bank.store import build_db, default_db_path, default_seed_dirs, open_bank, user_seeds_dir


def _bank(args, dense=None):
    return open_bank(args.db, dense=dense)


def cmd_build(args) -> int:
    # Storing the embeddings in the file means no query ever embeds the bank.
    path = build_db(args.db, embed=None if not args.no_embed else False)
    bank = open_bank(path)
    info = bank.info()
    print(f"built {info['path']}: {info['theorems']} theorems (schema {info['schema_version']})")
    return 0


def cmd_search(args) -> int:
    bank = _bank(args, dense=False if args.mode == "bm25" else None)
    hits = bank.retrieve(args.text, k=args.k, domain=args.domain, mode=args.mode)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return 0
    if not hits:
        print("no theorem matches; try other words")
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:2d}. {hit.id}  ({hit.name})  score {hit.score:.4f}  [{hit.reason}]")
    return 0


def cmd_show(args) -> int:
    bank = _bank(args, dense=False)
    theorem = bank.get(args.id)
    if theorem is None:
        close = [h.id for h in bank.retrieve(args.id.replace("_", " "), k=3, mode="bm25")]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"no theorem with id {args.id!r}{hint}", file=sys.stderr)
        return 1
    print(yaml.safe_dump(theorem, allow_unicode=True, sort_keys=False, width=110), end="")
    return 0


def cmd_add(args) -> int:
    source = Path(args.file)
    target_dir = Path(args.into) if args.into else user_seeds_dir()
    if target_dir.resolve() not in {d.resolve() for d in default_seed_dirs()}:
        # The bank is rebuilt from these directories only; a file elsewhere would vanish at the next rebuild.
        print(f"--into must be one of {[str(d) for d in default_seed_dirs()]}", file=sys.stderr)
        return 2
    try:
        entries = load_yaml_file(source)
    except TheoremError as exc:
        print(f"add refused, nothing changed: {exc}", file=sys.stderr)
        return 2
    bank = _bank(args, dense=False)
    known = bank.all()
    claimed = {name: t["id"] for t in known for name in t["aliases"]["formalgeo"]}
    problems = validate_theorems(entries, str(source), {t["id"] for t in known}, claimed)
    if not entries:
        problems.append(f"{source}: the file holds no theorems")
    target = target_dir / source.name
    if target.exists():
        problems.append(f"{target} already exists; rename {source.name} or edit that file instead")
    if problems:
        print("add refused, nothing changed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    target_dir.mkdir(parents=True, exist_ok=True)
    # Copied aside and renamed: a kill mid-copy must not leave a torn seed file that breaks every later build.
    partial = target_dir / f".{target.name}.adding"
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    dirs = tuple(dict.fromkeys([*default_seed_dirs(), target_dir]))
    had_embeddings = bank.conn().execute("SELECT count(*) FROM embeddings").fetchone()[0] > 0
    try:
        build_db(args.db, dirs, embed=None if had_embeddings else False)
    except TheoremError as exc:  # cannot happen after validation, but never leave a file the bank rejects
        target.unlink()
        print(f"add refused, nothing changed: {exc}", file=sys.stderr)
        return 2
    print(f"added {len(entries)} theorem(s) from {source} as {target}; bank rebuilt")
    return 0


def cmd_export(args) -> int:
    theorems = _bank(args, dense=False).all()
    if args.format == "json":
        print(json.dumps(theorems, ensure_ascii=False, indent=1))
    else:
        print(yaml.safe_dump(theorems, allow_unicode=True, sort_keys=False, width=110), end="")
    return 0


def cmd_stats(args) -> int:
    bank = _bank(args, dense=False)
    theorems = bank.all()
    by_domain = collections.Counter(t["domain"] for t in theorems)
    formalgeo = sum(len(t["aliases"]["formalgeo"]) for t in theorems)
    stats = {
        **bank.info(),
        "domains": {d: by_domain.get(d, 0) for d in DOMAINS if by_domain.get(d)},
        "formalgeo_names": formalgeo,
        "zh_aliases": sum(len(t["aliases"]["zh"]) for t in theorems),
        "embeddings": bank.conn().execute("SELECT count(*) FROM embeddings").fetchone()[0],
    }
    if args.json:
        print(json.dumps(stats, ensure_ascii=False))
    else:
        for key, value in stats.items():
            print(f"{key:16s} {value}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m theorem_bank", description=__doc__)
    parser.add_argument("--db", type=Path, default=None, help=f"bank file (default {default_db_path()})")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="rebuild the SQLite bank from the seed YAML files")
    p.add_argument("--no-embed", action="store_true", help="skip storing dense embeddings")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("search", help="retrieve theorems for a problem text")
    p.add_argument("text", help="the problem text to find theorems for")
    p.add_argument("-k", type=int, default=5, help="how many theorems to list (default: 5)")
    p.add_argument("--domain", choices=DOMAINS, help="only theorems of this domain (default: all)")
    p.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default="hybrid",
                   help="ranking: BM25 + dense embeddings, BM25 alone, or dense alone (default: hybrid)")
    p.add_argument("--json", action="store_true", help="print the hits as JSON lines instead of a table")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("show", help="print one theorem as YAML")
    p.add_argument("id", help="theorem id, e.g. parallel_corresponding_angles")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("add", help="validate a YAML file of theorems and add it to the bank")
    p.add_argument("file", help="YAML file of theorems in the seed format (theorem_bank/seeds/*.yaml)")
    p.add_argument("--into", help=f"where to keep the file: {user_seeds_dir()} (default) or the package seeds dir")
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("export", help="print every theorem")
    p.add_argument("--format", choices=("json", "yaml"), default="yaml", help="output format (default: yaml)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("stats", help="counts by domain and build information")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_stats)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (TheoremError, MathError, FileNotFoundError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
