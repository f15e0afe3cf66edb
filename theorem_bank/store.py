"""The SQLite theorem store: building it from the seed files and opening it for many readers.

The database is a build artifact. Its `schema_version` table records the schema version and a hash
of the seed files it was built from; `open_bank` rebuilds whenever either differs or the file is
missing or unreadable. A build writes a temporary file in the same directory and renames it over
the old one, so a reader sees either the old bank or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from theorem_bank import retrieval
from theorem_bank.retrieval import Hit  # noqa: F401 - re-exported: a retrieval result, owned by the retriever
from theorem_bank.schema import SEEDS_DIR, TheoremError, load_seeds, seed_files
from theorem_bank.text import index_text, valid_text, words

SCHEMA_VERSION = 3
DB_NAME = "theorem_bank.sqlite"
FTS_COLUMNS = ("name", "statement", "aliases", "keywords")


def cache_dir() -> Path:
    """Where build artifacts live: $THEOREM_TUTOR_CACHE, else the XDG cache directory."""
    env = os.environ.get("THEOREM_TUTOR_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "theorem-tutor"


def default_db_path() -> Path:
    return cache_dir() / DB_NAME


def user_seeds_dir() -> Path:
    """Theorems added with `python -m theorem_bank add` live next to the DB, outside the package."""
    return cache_dir() / "seeds"


def default_seed_dirs() -> tuple[Path, ...]:
    return (SEEDS_DIR, user_seeds_dir())


def seeds_hash(dirs) -> str:
    """Content hash of every seed file (name and bytes) plus the schema version."""
    digest = hashlib.sha256(f"schema {SCHEMA_VERSION}\n".encode())
    for path in seed_files(dirs):
        digest.update(f"{path.parent.name}/{path.name}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def theorem_row(theorem: dict) -> dict:
    aliases = theorem["aliases"]
    return {
        "id": theorem["id"],
        "name": theorem["name"],
        "domain": theorem["domain"],
        "topic": theorem["topic"],
        "statement": theorem["statement"],
        # FTS columns hold search words (notation spelled out, CJK as bigrams, snake_case split).
        "aliases": index_text(aliases["en"], aliases["zh"], aliases["formalgeo"], theorem["topic"]),
        "keywords": index_text(
            theorem["keywords"], theorem["conditions"], [spec["meaning"] for spec in theorem["roles"].values()]
        ),
        "data": json.dumps(theorem, ensure_ascii=False, sort_keys=True),
    }


def write_db(path: Path, theorems: list[dict], source_hash: str, embed: bool | None = False) -> None:
    """Write a complete bank to `path` (which must not be in use).

    Embeddings are computed here, into the file being built, because the live file is never written
    after the rename: readers only read, so its WAL stays empty and a rebuild can replace it safely.
    """
    import sqlite_utils  # here, not at the top: it imports pandas (0.5 s), which `--help` must not wait for

    db = sqlite_utils.Database(str(path))
    db["theorems"].insert_all((theorem_row(t) for t in theorems), pk="id", batch_size=2000)
    db["theorems"].create_index(["domain"])
    db["theorems"].enable_fts(list(FTS_COLUMNS), tokenize="porter unicode61 remove_diacritics 2")
    db["theorems"].populate_fts(list(FTS_COLUMNS))
    db.execute("INSERT INTO theorems_fts(theorems_fts) VALUES('optimize')")
    db["embeddings"].create({"id": str, "model": str, "dim": int, "vector": bytes}, pk=("id", "model"))
    if embed is not False:
        rows = retrieval.embedding_rows(theorems, warn=embed is True)
        if rows:
            db["embeddings"].insert_all(rows, batch_size=2000)
    db["schema_version"].insert(
        {"version": SCHEMA_VERSION, "seeds_hash": source_hash, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "theorems": len(theorems)}
    )
    db.conn.commit()
    db.enable_wal()
    db.close()


def build_db(path: Path | str | None = None, dirs=None, theorems: list[dict] | None = None,
             embed: bool | None = False) -> Path:
    """Build the bank from the seed dirs (or the given theorems) into a temp file, then rename it into place.

    `embed`: store dense embeddings (True), skip them (False, the default: the first dense query embeds the
    bank into a cache file beside it instead, so a build takes well under a second), or store them when
    the model is installed (None).
    """
    path = Path(path) if path else default_db_path()
    dirs = tuple(dirs) if dirs else default_seed_dirs()
    if theorems is None:
        theorems = load_seeds(dirs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".building", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        write_db(Path(tmp), theorems, seeds_hash(dirs), embed)
        # A journal left beside the old file belongs to the old file: if it stayed, SQLite would replay it
        # onto the new one. Readers still holding the old file keep their (unlinked) copies.
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(tmp + suffix).unlink(missing_ok=True)
    return path


def db_status(path: Path, dirs) -> str:
    """'ok', or why the file at `path` cannot serve as the bank for these seed dirs."""
    if not path.exists():
        return "missing"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT version, seeds_hash FROM schema_version").fetchone()
            conn.execute("SELECT count(*) FROM theorems_fts WHERE theorems_fts MATCH '\"x\"'").fetchone()
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"corrupt ({check})"
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"unreadable ({exc})"
    if row is None or row[0] != SCHEMA_VERSION:
        return f"stale schema (file has {row[0] if row else None}, code expects {SCHEMA_VERSION})"
    if row[1] != seeds_hash(dirs):
        return "stale (seed files changed since the build)"
    return "ok"


def _label_key(label: str) -> str:
    return " ".join(label.replace("_", " ").lower().split())


class Bank:
    """Read access to one bank file. Thread-safe: each thread gets its own read-only connection."""

    def __init__(self, path: Path | str, dense: bool | None = None, learned: bool | None = None):
        self.path = Path(path)
        self._local = threading.local()
        self._cache: dict[str, dict] = {}
        self._dense_wanted = dense
        self._dense_index = None
        self._learned_wanted = learned
        self._aliases: dict[str, list[str]] | None = None
        self._df_cache: dict[str, int] = {}
        self._stems: dict[str, frozenset[str]] = {}
        self._lock = threading.RLock()
        self._file_id: tuple | None = None
        self.weights = retrieval.DEFAULT_WEIGHTS

    # -- connections -------------------------------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        """This thread's connection; reopened, and every cache of bank content emptied, when a rebuild replaced
        the file (`theorem_bank add` in another process while the app runs). One stat() per call."""
        try:
            st = self.path.stat()
        except FileNotFoundError as exc:
            raise TheoremError(f"theorem bank {self.path} is gone; run `python -m theorem_bank build`") from exc
        # Readers never write the file, so only a rebuild changes these; the inode alone could be reused.
        file_id = (st.st_ino, st.st_mtime_ns, st.st_size)
        if file_id != self._file_id:
            with self._lock:
                if file_id != self._file_id:
                    if self._file_id is not None:
                        self._forget_contents()
                    self._file_id = file_id
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.file_id != file_id:
            if conn is not None:
                conn.close()
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.conn, self._local.file_id = conn, file_id
        return conn

    def _forget_contents(self) -> None:
        self._cache, self._aliases, self._df_cache, self._stems = {}, None, {}, {}
        self._dense_index = None  # re-read: the rebuilt file has its own theorems (and perhaps embeddings)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- lookup ------------------------------------------------------------------------------------
    def get(self, theorem_id: str) -> dict | None:
        conn = self.conn()  # first: it empties the caches when the file was rebuilt
        if theorem_id in self._cache:
            return self._cache[theorem_id]
        row = conn.execute("SELECT data FROM theorems WHERE id = ?", (valid_text(str(theorem_id)),)).fetchone()
        if row is None:
            return None
        theorem = json.loads(row[0])
        self._cache[theorem_id] = theorem
        return theorem

    def all(self) -> list[dict]:
        return [json.loads(r[0]) for r in self.conn().execute("SELECT data FROM theorems ORDER BY rowid")]

    def ids(self) -> list[str]:
        return [r[0] for r in self.conn().execute("SELECT id FROM theorems ORDER BY rowid")]

    def __len__(self) -> int:
        return self.conn().execute("SELECT count(*) FROM theorems").fetchone()[0]

    def __contains__(self, theorem_id) -> bool:
        return self.get(theorem_id) is not None

    def formalgeo_map(self) -> dict[str, str]:
        """FormalGeo theorem name -> bank id, from the `formalgeo` aliases."""
        mapping = {}
        for theorem in self.all():
            for name in theorem["aliases"]["formalgeo"]:
                mapping[name] = theorem["id"]
        return mapping

    def stems(self, theorem_id: str) -> frozenset[str]:
        """Stemmed words of a theorem's text, for explaining matches (cached: theorems do not change)."""
        if theorem_id not in self._stems:
            theorem = self.get(theorem_id)
            self._stems[theorem_id] = retrieval.theorem_stems(theorem) if theorem else frozenset()
        return self._stems[theorem_id]

    def _label_tables(self) -> None:
        exact: dict[str, list[str]] = {}
        phrases: dict[tuple[str, ...], list[str]] = {}
        for theorem in self.all():
            a = theorem["aliases"]
            for label in {theorem["id"], theorem["name"], *a["en"], *a["zh"], *a["formalgeo"]}:
                exact.setdefault(_label_key(label), []).append(theorem["id"])
            for label in {theorem["name"], *a["en"]}:
                phrase = tuple(words(label))
                if len(phrase) >= 2:
                    phrases.setdefault(phrase, []).append(theorem["id"])
        self._phrases, self._phrase_lengths = phrases, sorted({len(p) for p in phrases}, reverse=True)
        self._aliases = exact

    def exact_alias(self, text: str) -> list[str]:
        """Ids whose id, name or an alias equals the whole query (case and spacing ignored)."""
        self.conn()  # a rebuilt file empties the label tables first
        if self._aliases is None:
            self._label_tables()
        return self._aliases.get(_label_key(text[:200]), []) if len(text) <= 200 else []

    def named_in(self, text: str) -> list[str]:
        """Ids whose name or an English alias of two or more words occurs in the query ("... by the law of
        cosines ..."), longest phrase first: a user who names a theorem means that theorem."""
        self.conn()  # a rebuilt file empties the label tables first
        if self._aliases is None:
            self._label_tables()
        toks = words(text[:4000])
        found: dict[str, None] = {}
        for n in self._phrase_lengths:
            for i in range(len(toks) - n + 1):
                for ident in self._phrases.get(tuple(toks[i : i + n]), ()):
                    found.setdefault(ident)
        return list(found)

    def info(self) -> dict:
        row = self.conn().execute("SELECT version, seeds_hash, built_at, theorems FROM schema_version").fetchone()
        return {"path": str(self.path), "schema_version": row[0], "seeds_hash": row[1], "built_at": row[2], "theorems": row[3]}

    # -- retrieval ---------------------------------------------------------------------------------
    def bm25(self, text: str, k: int = 10, domain: str | None = None) -> list[tuple[str, float]]:
        return retrieval.bm25_search(self.conn(), text, k, domain, self.weights, self._df_cache)

    def dense_index(self):
        """The dense index, loaded once; None when the embedding model is not installed."""
        if self._dense_wanted is False:
            return None
        self.conn()  # a rebuilt file drops the index of the old one
        with self._lock:
            if self._dense_index is None:
                self._dense_index = retrieval.DenseIndex.load(self) or False
        return self._dense_index or None

    def learned(self):
        """The learned text -> theorem scorer, or None when its weights file is absent or learned=False."""
        return None if self._learned_wanted is False else retrieval.load_learned()

    def retrieve(self, text: str, k: int = 5, domain: str | None = None, mode: str = "hybrid") -> list[Hit]:
        """The k theorems most relevant to `text` (BM25, dense and learned rankings fused by reciprocal rank)."""
        return retrieval.retrieve(self, text, k=k, domain=domain, mode=mode)


def open_bank(path: Path | str | None = None, dirs=None, rebuild: bool | None = None, dense: bool | None = None,
              embed: bool | None = False, learned: bool | None = None) -> Bank:
    """Open the bank, building it first when the file is missing, unreadable, or older than the seeds.

    `rebuild=False` never builds: a bad file raises TheoremError naming the command that fixes it.
    Opening is cheap (no model is loaded): the dense encoder loads on the first dense or hybrid query.
    """
    path = Path(path) if path else default_db_path()
    dirs = tuple(dirs) if dirs else default_seed_dirs()
    status = db_status(path, dirs)
    if status != "ok":
        if rebuild is False:
            raise TheoremError(f"theorem bank {path} is {status}; rebuild it with `python -m theorem_bank build`")
        build_db(path, dirs, embed=False if dense is False else embed)
    return Bank(path, dense=dense, learned=learned)
