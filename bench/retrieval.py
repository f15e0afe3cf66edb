"""Retrieval quality and latency of the theorem bank on FormalGeo7k.

    python bench/retrieval.py [--train-sample 1000] [--queries 300] [--sizes 1000,10000,100000] [--no-tune] [--tune-bm25]

Gold theorems of a problem are its `theorem_seqs` names mapped to bank ids through the `formalgeo`
aliases. Recall@k is averaged over problems (share of a problem's distinct gold theorems in the top k).
Only the train split of problem_split_3_1_1_619.json is learned from: the shipped learned scorer
(theorem_bank/learned_formalgeo.npz) was fitted on it, and the fusion knobs are tuned here on a
train-internal holdout with a scorer refitted on the rest of train. Figures are reported on the test
split (test/problems/*.json, problem_text_en): bm25, dense, learned alone, bm25+dense, and `hybrid`,
which is Bank.retrieve's default (shipped weights). The baseline returns the k bank theorems most
frequent in the train split under the same mapping. Latency: BM25 retrieval p50/p95 on banks padded
with synthetic theorems.
Prints progress to stderr and ONE JSON line to stdout.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from theorem_bank import learn, retrieval  # noqa: E402
from theorem_bank.schema import load_seeds  # noqa: E402
from theorem_bank.store import Bank, build_db  # noqa: E402


def data_dir() -> Path:
    return Path(os.environ.get("THEOREM_TUTOR_DATA", REPO.parent / "shared" / "data"))


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def load_problems(root: Path, mapping: dict[str, str]):
    """(train, test): lists of (text, gold ids, gold FormalGeo names)."""
    split = json.loads((root / "problem_split_3_1_1_619.json").read_text())["split"]
    train_ids = set(split["train"])
    every = {}
    with (root / "problems_all.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            every[record["problem_id"]] = record

    def item(record):
        names = {s.split("(", 1)[0] for s in record["theorem_seqs"]}
        gold = {mapping[n] for n in names if n in mapping}
        return record["problem_text_en"], gold, names

    train = [item(every[i]) for i in sorted(train_ids) if i in every]
    test = [item(json.loads(p.read_text(encoding="utf-8"))) for p in sorted((root / "test" / "problems").glob("*.json"))]
    return [t for t in train if t[1]], [t for t in test if t[1]]


def recall_at(ranked: list[str], gold: set[str], k: int) -> float:
    return len(gold.intersection(ranked[:k])) / len(gold)


def mean_recall(rankings, items, k) -> float:
    return float(np.mean([recall_at(r, gold, k) for r, (_, gold, _) in zip(rankings, items)]))


def fuse(lexical: list[str], dense: list[str], learned: list[str], w: retrieval.Weights) -> list[str]:
    return [i for i, _ in retrieval.fuse(lexical, dense, learned, w)]


def learned_rankings(scorer, items, depth=50):
    return [[i for i, _ in scorer.rank(text, depth)] for text, _, _ in items]


def bm25_rankings(bank: Bank, items, weights, depth=50):
    bank.weights = weights
    return [[i for i, _ in bank.bm25(text, depth)] for text, _, _ in items]


def dense_rankings(bank: Bank, items, depth=50):
    index = bank.dense_index()
    if index is None:
        return None
    queries = retrieval.encode(index.model, [text for text, _, _ in items])
    scores = queries @ index.matrix.T
    order = np.argsort(-scores, axis=1)[:, :depth]
    return [[index.ids[j] for j in row] for row in order]


def tune_bm25(bank: Bank, items) -> retrieval.Weights:
    """Grid search of the FTS column weights on train problems."""
    best_w, best_score = None, -1.0
    for name, statement, aliases, keywords in itertools.product((1.0, 3.0), (0.5, 1.0), (1.0, 2.0, 4.0), (1.0, 2.0, 4.0)):
        w = dataclasses.replace(retrieval.DEFAULT_WEIGHTS, name=name, statement=statement, aliases=aliases, keywords=keywords)
        score = mean_recall(bm25_rankings(bank, items, w), items, 10)
        if score > best_score:
            best_w, best_score = w, score
    log(f"tuned BM25 weights {best_w} train recall@10 {best_score:.4f}")
    return best_w


def tune_fusion(base: retrieval.Weights, lexical, dense, learned, items) -> tuple[retrieval.Weights, float]:
    """Grid search of the RRF knobs on a train-internal holdout (learned scorer fitted on the rest of train)."""
    dense = dense or [[] for _ in items]
    best_w, best_score = base, -1.0
    grid = itertools.product((5.0, 20.0, 60.0), (0.0, 0.25, 0.5, 1.0), (0.0, 0.25, 0.5, 1.0), (1.0, 2.0, 4.0, 8.0), (20, 50))
    for rrf_k, bm25_weight, dense_weight, learned_weight, pool in grid:
        w = dataclasses.replace(base, with_learned_rrf_k=rrf_k, with_learned_bm25=bm25_weight,
                                with_learned_dense=dense_weight, learned_weight=learned_weight, pool=pool)
        score = mean_recall([fuse(lx, dn, ln, w) for lx, dn, ln in zip(lexical, dense, learned)], items, 10)
        if score > best_score + 1e-9:
            best_w, best_score = w, score
    log(f"tuned fusion {best_w} holdout hybrid recall@10 {best_score:.4f}")
    return best_w, best_score


def synthetic_theorems(seeds: list[dict], n: int, rng: random.Random) -> list[dict]:
    """Padding: plausible theorems whose text mixes words of the real bank."""
    vocab = sorted({w for t in seeds for w in (t["statement"] + " " + " ".join(t["keywords"])).split() if w.isalpha()})
    template = seeds[0]
    out = []
    for i in range(n):
        words = rng.sample(vocab, 14)
        out.append({**template, "id": f"pad_{i}", "name": " ".join(words[:4]), "statement": " ".join(words[4:14]),
                    "keywords": rng.sample(vocab, 4), "aliases": {"en": [" ".join(rng.sample(vocab, 3))], "zh": [], "formalgeo": []}})
    return out


def latency(seeds, queries, sizes, rng) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            theorems = seeds + synthetic_theorems(seeds, max(0, size - len(seeds)), rng)
            path = build_db(Path(tmp) / f"pad{size}.sqlite", theorems=theorems, embed=False)
            bank = Bank(path, dense=False, learned=False)
            bank.retrieve(queries[0], k=10, mode="bm25")
            # Wall time is what a user waits; CPU time (this thread) is what the code costs, and stays
            # meaningful when other jobs load the machine.
            times, cpu = [], []
            for q in queries:
                start, start_cpu = time.perf_counter(), time.thread_time()
                bank.retrieve(q, k=10, mode="bm25")
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.thread_time() - start_cpu) * 1000)
            out[str(size)] = {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2),
                              "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2), "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 2)}
            log(f"latency {size}: {out[str(size)]}")
            bank.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-sample", type=int, default=1000, help="train-internal holdout size (at most 1/5 of train)")
    parser.add_argument("--queries", type=int, default=300, help="queries per latency measurement")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--no-tune", action="store_true", help="skip the holdout tuning; report the shipped defaults only")
    parser.add_argument("--tune-bm25", action="store_true", help="also grid-search the FTS column weights (slow)")
    parser.add_argument("--latency-only", action="store_true", help="skip the recall measurement")
    args = parser.parse_args()
    root = data_dir() / "formalgeo7k_v1"
    if not (root / "problems_all.jsonl").exists():
        print(json.dumps({"bench": "retrieval", "skipped": True, "reason": f"{root} missing (set THEOREM_TUTOR_DATA)"}))
        return 0
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    rng = random.Random(0)
    seeds = load_seeds()
    mapping = {n: t["id"] for t in seeds for n in t["aliases"]["formalgeo"]}
    train, test = load_problems(root, mapping)
    log(f"{len(train)} train / {len(test)} test problems with mapped gold theorems; bank {len(seeds)} theorems")

    result = {"bench": "retrieval", "bank_theorems": len(seeds), "test_problems": len(test)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.latency_only:
            sizes = [int(s) for s in args.sizes.split(",") if s]
            queries = [text for text, _, _ in rng.sample(test, min(args.queries, len(test)))]
            result["bm25_latency"] = latency(seeds, queries, sizes, rng)
            print(json.dumps(result))
            return 0
        bank = Bank(build_db(Path(tmp) / "bank.sqlite", theorems=seeds), dense=None)
        weights = retrieval.DEFAULT_WEIGHTS
        # Train-internal holdout: the learned scorer is refitted on the other 80% of train so that the
        # fusion knobs are chosen on problems it has not seen, as test problems will be.
        shuffled = rng.sample(train, len(train))
        cut = len(shuffled) - min(args.train_sample, len(shuffled) // 5)
        fit_part, holdout = shuffled[:cut], shuffled[cut:]
        if args.tune_bm25:
            weights = tune_bm25(bank, holdout)
        if not args.no_tune:
            log(f"fitting the learned scorer on {len(fit_part)} train problems; holdout {len(holdout)}")
            holdout_scorer = learn.fit([(text, gold) for text, gold, _ in fit_part])
            tuned, holdout_score = tune_fusion(weights, bm25_rankings(bank, holdout, weights), dense_rankings(bank, holdout),
                                               learned_rankings(holdout_scorer, holdout), holdout)
            result["tuned_on_train_holdout"] = {"problems": len(holdout), "hybrid_recall@10": round(holdout_score, 4),
                                                "weights": dataclasses.asdict(tuned)}
            weights = tuned
        lexical = bm25_rankings(bank, test, weights)
        dense_test = dense_rankings(bank, test)
        scorer = retrieval.load_learned()
        learned_test = learned_rankings(scorer, test) if scorer is not None else None

        # Baseline: most frequent bank theorems in the train split (problems that use them).
        frequency = collections.Counter(g for _, gold, _ in train for g in gold)
        baseline = [g for g, _ in frequency.most_common()]
        name_frequency = collections.Counter(n for _, _, names in train for n in names)
        name_baseline = [n for n, _ in name_frequency.most_common(10)]

        # The product default: Bank.retrieve in hybrid mode with the shipped weights and scorer.
        bank.weights = retrieval.DEFAULT_WEIGHTS
        product = [[h.id for h in bank.retrieve(text, k=10)] for text, _, _ in test]
        for k in (5, 10):
            result[f"bm25_recall@{k}"] = round(mean_recall(lexical, test, k), 4)
            if dense_test is not None:
                result[f"dense_recall@{k}"] = round(mean_recall(dense_test, test, k), 4)
                bm25_dense = [fuse(lx, dn, [], retrieval.DEFAULT_WEIGHTS) for lx, dn in zip(lexical, dense_test)]
                result[f"bm25_dense_recall@{k}"] = round(mean_recall(bm25_dense, test, k), 4)
            if learned_test is not None:
                result[f"learned_recall@{k}"] = round(mean_recall(learned_test, test, k), 4)
            if not args.no_tune:
                tuned_hybrid = [fuse(lx, dn, ln, weights) for lx, dn, ln in
                                zip(lexical, dense_test or [[]] * len(test), learned_test or [[]] * len(test))]
                result[f"hybrid_tuned_this_run_recall@{k}"] = round(mean_recall(tuned_hybrid, test, k), 4)
            result[f"hybrid_recall@{k}"] = round(mean_recall(product, test, k), 4)
            result[f"baseline_recall@{k}"] = round(mean_recall([baseline] * len(test), test, k), 4)
        result["formalgeo_names_baseline_recall@10"] = round(float(np.mean(
            [len(names.intersection(name_baseline)) / len(names) for _, _, names in test])), 4)
        result["hybrid_minus_baseline@10"] = round(result["hybrid_recall@10"] - result["baseline_recall@10"], 4)
        result["hybrid_parts"] = {"bm25": True, "dense": bank.dense_index() is not None, "learned": scorer is not None}
        result["default_weights"] = dataclasses.asdict(retrieval.DEFAULT_WEIGHTS)
        bank.close()

    log("quality: " + json.dumps(result))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    queries = [text for text, _, _ in rng.sample(test, min(args.queries, len(test)))]
    result["bm25_latency"] = latency(seeds, queries, sizes, rng)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
