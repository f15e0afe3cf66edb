"""A learned text -> theorem scorer: one-vs-rest logistic regression over problem-text features.

Problem texts mostly list givens ("∠DBC=60°, DE∥BC. Find ∠CED") and leave the theorems they need
implied, so words shared with a theorem's statement (BM25) or its meaning (dense) miss most of them.
This model learns, from the FormalGeo7k TRAIN split only, which wording and notation go with which
bank theorems. The shipped file (theorem_bank/learned_formalgeo.npz) holds only derived statistics:
a feature vocabulary (words, word pairs, notation patterns), int8-quantised weights and biases per
theorem id. No problem text is stored. Regenerate it with

    python -m theorem_bank.learn --data ../shared/data/formalgeo7k_v1

Training uses numpy only (full-batch Adam on the logistic loss with L2).
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

import numpy as np

from theorem_bank.text import SYMBOL_WORDS

WEIGHTS_PATH = Path(__file__).resolve().parent / "learned_formalgeo.npz"
SPLIT_FILE = "problem_split_3_1_1_619.json"
FORMAT_VERSION = 1

_SYMBOLS = {s: w.strip() for s, w in SYMBOL_WORDS.items()}
_TOKEN = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?|[^\sA-Za-z\d]")
_POINTS = re.compile(r"^[A-Z]{1,5}$")


def tokens(text: str) -> list[str]:
    """Problem text as class tokens: point names -> P/PP/PPP (their length says segment, angle, polygon),
    numbers -> NUM (90/180/360 kept), notation symbols -> their word, other words lower-cased."""
    out = []
    for raw in _TOKEN.findall(text[:5000]):
        if raw in _SYMBOLS:
            out.append(_SYMBOLS[raw])
        elif _POINTS.match(raw):
            out.append("P" * min(len(raw), 4))
        elif raw[0].isdigit():
            out.append(raw if raw in ("90", "180", "360") else "NUM")
        elif raw.isalpha():
            out.append(raw.lower())
        elif raw in "=+-*/^(),.?:":
            out.append(raw)
    return out


def features(text: str) -> set[str]:
    """Unigrams, bigrams and trigrams of class tokens, plus a few counts of given facts."""
    toks = tokens(text)
    feats = set(toks)
    feats.update(f"{a} {b}" for a, b in zip(toks, toks[1:]))
    feats.update(f"{a} {b} {c}" for a, b, c in zip(toks, toks[1:], toks[2:]))
    angles = text.count("∠")
    lengths = len(re.findall(r"(?<![A-Z∠])[A-Z]{2}\s*=", text))
    feats.add(f"#angles={min(angles, 6)}")
    feats.add(f"#lengths={min(lengths, 6)}")
    if re.search(r"[a-z]\s*[+\-*/]|[*/]\s*[a-z]|\b[xyz]\b", text):
        feats.add("#has_variable")
    return feats


class LearnedScorer:
    """Scores every theorem id the model was trained on; unknown features are ignored."""

    def __init__(self, vocab: list[str], labels: list[str], weights: np.ndarray, bias: np.ndarray, meta: dict):
        self.index = {f: i for i, f in enumerate(vocab)}
        self.labels, self.weights, self.bias, self.meta = labels, weights.astype(np.float32), bias.astype(np.float32), meta

    @classmethod
    def load(cls, path: Path | str = WEIGHTS_PATH) -> "LearnedScorer | None":
        path = Path(path)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT_VERSION:
                return None
            weights = data["weights_q"].astype(np.float32) * data["scale"][None, :]
            return cls([str(f) for f in data["vocab"]], [str(i) for i in data["labels"]], weights, data["bias"], meta)

    def known_features(self, text: str) -> list[int]:
        return [self.index[f] for f in features(text) if f in self.index]

    def scores(self, text: str) -> np.ndarray:
        """Logit per label."""
        rows = self.known_features(text)
        return self.bias + (self.weights[rows].sum(0) if rows else 0.0)

    def rank(self, text: str, k: int) -> list[tuple[str, float]]:
        logits = self.scores(text)
        order = np.argsort(-logits)[:k]
        return [(self.labels[i], float(logits[i])) for i in order]


# -- training -------------------------------------------------------------------------------------
def load_split(root: Path, mapping: dict[str, str], split: str):
    """[(text, gold bank ids)] of one split of problem_split_3_1_1_619.json (problems with mapped gold)."""
    wanted = set(json.loads((root / SPLIT_FILE).read_text())["split"][split])
    out = []
    with (root / "problems_all.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["problem_id"] not in wanted:
                continue
            gold = {mapping[n] for n in (s.split("(", 1)[0] for s in record["theorem_seqs"]) if n in mapping}
            if gold:
                out.append((record["problem_text_en"], gold))
    return out


def fit(items, min_df: int = 3, l2: float = 1e-3, steps: int = 300, lr: float = 0.05, max_features: int = 2500,
        log=lambda *a: None) -> LearnedScorer:
    """Train on [(text, gold ids)]; keeps the `max_features` most frequent features with df >= min_df."""
    feats = [features(text) for text, _ in items]
    df = collections.Counter(f for fs in feats for f in fs)
    # Ties broken by the feature itself: set order varies with string hashing, the file should not.
    vocab = [f for f, c in sorted(df.items(), key=lambda fc: (-fc[1], fc[0]))[:max_features] if c >= min_df]
    labels = sorted({g for _, gold in items for g in gold})
    fi, li = {f: i for i, f in enumerate(vocab)}, {g: i for i, g in enumerate(labels)}
    x = np.zeros((len(items), len(vocab)), dtype=np.float32)
    y = np.zeros((len(items), len(labels)), dtype=np.float32)
    for row, (fs, (_, gold)) in enumerate(zip(feats, items)):
        x[row, [fi[f] for f in fs if f in fi]] = 1.0
        y[row, [li[g] for g in gold]] = 1.0
    prior = y.mean(0).clip(1e-4, 1 - 1e-4)
    w = np.zeros((len(vocab), len(labels)), dtype=np.float32)
    b = np.log(prior / (1 - prior)).astype(np.float32)
    state = [np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)]
    n = len(items)
    for step in range(1, steps + 1):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        err = (p - y) / n
        grads = (x.T @ err + l2 * w, err.sum(0))
        for j, (param, grad) in enumerate(zip((w, b), grads)):
            m, v = state[2 * j], state[2 * j + 1]
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        if step % 100 == 0:
            loss = -np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))
            log(f"step {step} loss {loss:.4f}")
    meta = {"format": FORMAT_VERSION, "min_df": min_df, "l2": l2, "steps": steps, "train_problems": n}
    return LearnedScorer(vocab, labels, w, b, meta)


def save(scorer: LearnedScorer, path: Path, source: str) -> None:
    """int8 weights with one scale per label: a few hundred KB, and the ranking is unchanged in practice."""
    scale = np.maximum(np.abs(scorer.weights).max(0), 1e-8) / 127.0
    quantised = np.round(scorer.weights / scale[None, :]).astype(np.int8)
    vocab = sorted(scorer.index, key=scorer.index.get)
    meta = dict(scorer.meta, source=source, command="python -m theorem_bank.learn --data ../shared/data/formalgeo7k_v1",
                note="derived statistics of FormalGeo7k train-split problem texts; no problem text is stored")
    np.savez_compressed(path, vocab=np.array(vocab), labels=np.array(scorer.labels), weights_q=quantised,
                        scale=scale.astype(np.float32), bias=scorer.bias.astype(np.float32), meta=np.array(json.dumps(meta)))


def recall(scorer: LearnedScorer, items, k: int) -> float:
    return float(np.mean([len(gold.intersection(i for i, _ in scorer.rank(text, k))) / len(gold) for text, gold in items]))


def main(argv=None) -> int:
    from theorem_bank.schema import load_seeds

    parser = argparse.ArgumentParser(prog="python -m theorem_bank.learn", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the formalgeo7k_v1 directory")
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--min-df", type=int, default=3)
    parser.add_argument("--max-features", type=int, default=2500)
    args = parser.parse_args(argv)
    if not (args.data / "problems_all.jsonl").exists():
        print(f"{args.data}: problems_all.jsonl not found; pass the formalgeo7k_v1 directory", file=sys.stderr)
        return 2
    mapping = {n: t["id"] for t in load_seeds() for n in t["aliases"]["formalgeo"]}
    train = load_split(args.data, mapping, "train")
    scorer = fit(train, args.min_df, args.l2, args.steps, max_features=args.max_features,
                 log=lambda m: print(m, file=sys.stderr))
    save(scorer, args.out, f"FormalGeo7k v1 train split ({len(train)} problems, {SPLIT_FILE})")
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, "features": len(scorer.index),
                      "labels": len(scorer.labels), "train_recall@10": round(recall(scorer, train, 10), 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
