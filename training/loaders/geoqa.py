"""GeoQA test split (English, G-LLaVA/Geo170K wording) in the three formats of ../shared/data/geoqa_test_en.

- merged JSONL (`geoqa_test.jsonl`): question, choices {A: ...}, answer_label, answer, image, formalgeo_link;
- G-LLaVA pair: `*questions*.jsonl` {question_id, image, text: "<prompt>Question:...\\nChoices:\\nA:..."}
  plus the `*answers*.jsonl` beside it {question_id, text: "D"};
- R1-V direct-answer prompts: {image_path, question, ground_truth} (no choices).

All three yield the same ids (`geoqa-test-<index>`), questions and answers for the same problem.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from model.choices import CHOICE_LETTERS
from training.loaders.common import BadRecords, policy, read_jsonl, require
from training.records import ProblemRecord, RecordError

_QUESTION_RE = re.compile(r"Question:(?P<question>.*?)\nChoices:\n(?P<choices>.*)\Z", re.S)
_CHOICE_RE = re.compile(rf"^(?P<letter>[{CHOICE_LETTERS}])\s*[:：.)]\s*(?P<text>.*)$")


def detect_format(path: Path) -> str:
    """'merged', 'gllava' or 'r1v', from the keys of the first record."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                try:
                    keys = set(json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    break
                if {"question", "choices", "answer"} <= keys:
                    return "merged"
                if {"question_id", "text"} <= keys:
                    return "gllava"
                if {"question", "ground_truth"} <= keys:
                    return "r1v"
                break
    raise RecordError("not a GeoQA file this loader knows: expected the merged JSONL (question, choices, answer), "
                      "G-LLaVA questions (question_id, text) or R1-V prompts (question, ground_truth)", where=str(path))


def load_geoqa(path: str | Path, *, answers: str | Path | None = None, image_root: str | Path | None = None,
               text_only: bool = False, bad: BadRecords | None = None) -> Iterator[ProblemRecord]:
    """Records from any of the three GeoQA formats. `path` may also be the geoqa_test_en folder (merged file).

    Images: the merged file names `images/<i>.png` relative to itself (235 exist; null otherwise). G-LLaVA and R1-V
    name Geo170K's `test/<i>.png`, which is not shipped: give `image_root` to resolve them; a named image that is
    missing there is an error unless `text_only`.
    """
    bad = policy(bad)
    path = Path(path)
    if path.is_dir():
        path = path / "geoqa_test.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"GeoQA file not found: {path} (expected geoqa_test.jsonl, a G-LLaVA questions file "
                                f"or R1-V prompts; set THEOREM_TUTOR_DATA or pass --path)")
    fmt = detect_format(path)
    if fmt == "merged":
        yield from _load_merged(path, bad, text_only)
    elif fmt == "gllava":
        yield from _load_gllava(path, Path(answers) if answers else _answers_beside(path), image_root, text_only, bad)
    else:
        yield from _load_r1v(path, image_root, text_only, bad)


def _answers_beside(questions: Path) -> Path:
    candidate = questions.with_name(questions.name.replace("questions", "answers"))
    if candidate == questions or not candidate.is_file():
        raise FileNotFoundError(f"G-LLaVA answers file not found next to {questions} (looked for {candidate}); "
                                f"pass answers=PATH (CLI: --answers PATH)")
    return candidate


def _record(index: int, question: str, answer: str, choices: list[str] | None, image: str | None,
            where: str, meta: dict[str, Any]) -> ProblemRecord:
    answer_index = choices.index(answer) if choices and answer in choices else None
    record = ProblemRecord(id=f"geoqa-test-{index}", source="geoqa", split="test", question=question.strip(),
                           answer=answer.strip(), image=image, choices=choices, answer_index=answer_index, meta=meta)
    record.validate(where=where)
    return record


def _resolve_image(name: str | None, root: Path | None, text_only: bool, where: str, record_id: str) -> str | None:
    if not name or text_only or root is None:
        return None
    candidate = (root / name.removeprefix("./Geo170K/images/")).resolve()
    if not candidate.is_file():
        raise RecordError(f"diagram {candidate} does not exist; give the folder that holds Geo170K's images "
                          f"(--image-root) or build text-only (--text-only)", where=where, record_id=record_id,
                          field_name="image")
    return str(candidate)


def _load_merged(path: Path, bad: BadRecords, text_only: bool) -> Iterator[ProblemRecord]:
    for where, row in read_jsonl(path, bad):
        rid = f"geoqa-test-{row.get('test_index')}"
        try:
            index = require(row, "test_index", where, rid, int)
            question = require(row, "question", where, rid)
            choice_map = require(row, "choices", where, rid, dict)
            label = require(row, "answer_label", where, rid)
            answer = require(row, "answer", where, rid)
            letters = sorted(choice_map)
            choices = [str(choice_map[k]) for k in letters]
            if label not in choice_map or choice_map[label] != answer:
                raise RecordError(f"answer_label {label!r} does not point at the answer {answer!r} among {choice_map}",
                                  where=where, record_id=rid, field_name="answer_label")
            image = None
            if row.get("image") and not text_only:
                image_path = (path.parent / row["image"]).resolve()
                if not image_path.is_file():
                    raise RecordError(f"diagram {image_path} does not exist (build with --text-only to ignore images)",
                                      where=where, record_id=rid, field_name="image")
                image = str(image_path)
            meta = {"format": "merged", "answer_label": label, "geo170k_image_name": row.get("geo170k_image_name"),
                    "formalgeo_link": row.get("formalgeo_link")}
            record = _record(index, question, answer, choices, image, where, meta)
            record.answer_index = letters.index(label)
            yield record
        except RecordError as err:
            bad.reject(err, raw=row)


def _parse_gllava_text(text: str, where: str, rid: str) -> tuple[str, list[str], list[str]]:
    match = _QUESTION_RE.search(text)
    if not match:
        raise RecordError("text has no 'Question:' ... 'Choices:' layout", where=where, record_id=rid, field_name="text")
    letters, choices = [], []
    for line in match["choices"].splitlines():
        choice = _CHOICE_RE.match(line.strip())
        if choice:
            letters.append(choice["letter"])
            choices.append(choice["text"].strip())
    if len(choices) < 2:
        raise RecordError("fewer than two choices after 'Choices:'", where=where, record_id=rid, field_name="text")
    return match["question"], letters, choices


def _load_gllava(path: Path, answers_path: Path, image_root, text_only: bool, bad: BadRecords) -> Iterator[ProblemRecord]:
    letters_by_id: dict[Any, tuple[str, str]] = {}
    for where, row in read_jsonl(answers_path, bad):
        letters_by_id[row.get("question_id")] = (str(row.get("text", "")).strip(), where)
    root = Path(image_root) if image_root else None
    for where, row in read_jsonl(path, bad):
        rid = f"geoqa-test-{row.get('question_id')}"
        try:
            index = require(row, "question_id", where, rid, int)
            question, letters, choices = _parse_gllava_text(require(row, "text", where, rid), where, rid)
            if index not in letters_by_id:
                raise RecordError(f"no answer with this question_id in {answers_path}", where=where, record_id=rid,
                                  field_name="question_id")
            label, answer_where = letters_by_id[index]
            if label not in letters:
                raise RecordError(f"answer letter {label!r} is not one of the choices {letters}", where=answer_where,
                                  record_id=rid, field_name="text")
            image = _resolve_image(row.get("image"), root, text_only, where, rid)
            record = _record(index, question, choices[letters.index(label)], choices, image, where,
                             {"format": "gllava", "answer_label": label, "geo170k_image_name": row.get("image")})
            record.answer_index = letters.index(label)
            yield record
        except RecordError as err:
            bad.reject(err, raw=row)


def _load_r1v(path: Path, image_root, text_only: bool, bad: BadRecords) -> Iterator[ProblemRecord]:
    root = Path(image_root) if image_root else None
    # R1-V has no ids: the line order is the test order (checked against G-LLaVA, see the data README).
    for index, (where, row) in enumerate(read_jsonl(path, bad)):
        rid = f"geoqa-test-{index}"
        try:
            question = require(row, "question", where, rid)
            answer = require(row, "ground_truth", where, rid)
            image = _resolve_image(row.get("image_path"), root, text_only, where, rid)
            yield _record(index, question, answer, None, image, where,
                          {"format": "r1v", "geo170k_image_name": row.get("image_path")})
        except RecordError as err:
            bad.reject(err, raw=row)
