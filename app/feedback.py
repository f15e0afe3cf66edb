"""Student feedback on solutions: a local SQLite file (sqlite-utils) a person can open, and its export.

Each row keeps the problem (question, choices, the diagram's bytes), the chain the tutor showed (the chosen sample),
exactly what the page showed about it (the answer box as text, each step's badge, which of the N samples was
chosen) and the identity of the model, so a thumbs-down can become a training or evaluation case later. One row
per click-intent: the same rating of the same solution clicked again updates its row.

    python -m app.feedback export [--db PATH] [-o feedback.jsonl]     # JSONL, diagrams written next to it
    python -m app.feedback stats  [--db PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

SCHEMA_VERSION = 2  # 2: `shown` (what the page showed, JSON) and `intent` (one row per solution and rating)
TABLE = "feedback"
MAX_COMMENT_CHARS = 2000
MAX_IMAGE_BYTES = 8 * 1024 * 1024  # the diagram is kept only when it is a sane size; its hash is always kept


def default_db_path() -> Path:
    """`$THEOREM_TUTOR_FEEDBACK_DB`, else `feedback.sqlite` in the project's cache dir (`$THEOREM_TUTOR_CACHE`)."""
    if os.environ.get("THEOREM_TUTOR_FEEDBACK_DB"):
        return Path(os.environ["THEOREM_TUTOR_FEEDBACK_DB"])
    from theorem_bank.store import cache_dir  # the project's one cache location

    return cache_dir() / "feedback.sqlite"


class FeedbackStore:
    """Append-only feedback table; WAL so the app can write while someone reads the file."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: Gradio runs handlers on worker threads; sqlite serialises the writes.
        self.db = sqlite_utils.Database(sqlite3.connect(str(self.path), check_same_thread=False))
        self.db.enable_wal()
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: feedback schema version {version} is newer than this app's "
                               f"({SCHEMA_VERSION}); upgrade the app or point THEOREM_TUTOR_FEEDBACK_DB elsewhere")
        if TABLE not in self.db.table_names():
            self.db[TABLE].create({
                "id": int, "created": str, "rating": str, "comment": str,
                "question": str, "choices": str, "image_sha256": str, "image": bytes,
                "output": str, "answer": str, "model": str, "shown": str, "intent": str,
            }, pk="id")
            self.db[TABLE].create_index(["created"])
        elif version < 2:  # a version-1 file: add the columns, keep every row
            columns = self.db[TABLE].columns_dict
            for name in ("shown", "intent"):
                if name not in columns:
                    self.db[TABLE].add_column(name, str)
        if "idx_feedback_intent" not in {i.name for i in self.db[TABLE].indexes}:
            self.db[TABLE].create_index(["intent"], index_name="idx_feedback_intent")
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def add(self, rating: str, problem: dict, output: str, model: dict, comment: str = "", answer: str = "",
            shown: dict | None = None, intent: str = "") -> tuple[int, bool]:
        """Store one judgement; rating is "up" or "down". Returns (row id, whether the row is new): a non-empty
        `intent` that a row already has (the same solution rated the same way again) updates that row's comment
        and what was shown instead of adding a second row."""
        if rating not in ("up", "down"):
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        if intent:
            existing = self.db.execute(f"SELECT id FROM {TABLE} WHERE intent = ? ORDER BY id LIMIT 1",
                                       [intent]).fetchone()
            if existing:
                update = {"shown": json.dumps(shown or {}, ensure_ascii=False, sort_keys=True)}
                if comment:
                    update["comment"] = comment[:MAX_COMMENT_CHARS]
                self.db[TABLE].update(existing[0], update)
                return existing[0], False
        image_bytes, image_hash = _read_image(problem.get("image"))
        row = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rating": rating,
            "comment": (comment or "")[:MAX_COMMENT_CHARS],
            "question": problem.get("question") or "",
            "choices": json.dumps(problem.get("choices") or [], ensure_ascii=False),
            "image_sha256": image_hash,
            "image": image_bytes,
            "output": output or "",
            "answer": answer or "",
            "model": json.dumps(model or {}, ensure_ascii=False, sort_keys=True),
            "shown": json.dumps(shown or {}, ensure_ascii=False, sort_keys=True),
            "intent": intent or "",
        }
        return self.db[TABLE].insert(row).last_pk, True

    def count(self) -> dict[str, int]:
        rows = self.db.execute(f"SELECT rating, COUNT(*) FROM {TABLE} GROUP BY rating").fetchall()
        return {rating: n for rating, n in rows}

    def rows(self):
        yield from self.db[TABLE].rows_where(order_by="id")

    def export(self, out: str | Path) -> int:
        """Write all rows as JSONL; diagrams go to `<out stem>_images/<sha256>.<ext>` and rows name that file."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        images_dir = out.with_name(out.stem + "_images")
        count = 0
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for row in self.rows():
                record = {k: v for k, v in row.items() if k != "image"}
                record["choices"] = json.loads(row["choices"] or "[]")
                record["model"] = json.loads(row["model"] or "{}")
                record["shown"] = json.loads(row.get("shown") or "{}")
                record["image"] = None
                if row.get("image"):
                    path = _export_image(images_dir, row)
                    record["image"] = str(path.relative_to(out.parent)) if path else None
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        tmp.replace(out)
        return count


def _export_image(images_dir: Path, row: dict) -> Path | None:
    """The diagram file of `row`, written atomically and checked against the row's sha256; None (with a warning)
    when the stored bytes themselves do not match it. A file left partial by an earlier, killed export is
    rewritten, never exported as it is."""
    data, digest = row["image"], row["image_sha256"]
    if hashlib.sha256(data).hexdigest() != digest:
        print(f"feedback row {row['id']}: its stored diagram does not match its sha256 {digest[:12]}...; "
              "exported without the diagram", file=sys.stderr)
        return None
    images_dir.mkdir(exist_ok=True)
    path = images_dir / f"{digest}{_image_suffix(data)}"
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
        return path
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path


def _read_image(path: Any) -> tuple[bytes | None, str]:
    if not path:
        return None, ""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None, ""
    digest = hashlib.sha256(data).hexdigest()
    return (data if len(data) <= MAX_IMAGE_BYTES else None), digest


def _image_suffix(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".bin"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.feedback", description="Read the tutor's feedback store.")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write every feedback row as JSONL (diagrams as files next to it)")
    export.add_argument("-o", "--out", default="feedback.jsonl", help="output JSONL path (default: %(default)s)")
    export.add_argument("--db", default=None, help=f"feedback database (default: {default_db_path()})")
    stats = sub.add_parser("stats", help="count thumbs up and down")
    stats.add_argument("--db", default=None, help=f"feedback database (default: {default_db_path()})")
    args = parser.parse_args(argv)

    db_path = Path(args.db) if args.db else default_db_path()
    if not db_path.exists():
        print(f"no feedback database at {db_path}; run the app and rate a solution first, or pass --db PATH",
              file=sys.stderr)
        return 1
    store = FeedbackStore(db_path)
    if args.command == "export":
        n = store.export(args.out)
        print(f"wrote {n} feedback rows to {args.out}")
    else:
        print(json.dumps({"db": str(db_path), **store.count()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
