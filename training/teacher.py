"""Teacher rewriting (optional): turn a reference solution (MATH) into theorem steps with a model behind an
OpenAI-compatible endpoint, and keep a rewrite only if it is right.

Accepted when: the answer grades equal to the gold answer, no Exec step checks `wrong`, every cited theorem id
exists in the bank, and there is at least one step. Every other outcome is kept as a rejection with its reason.
Responses are cached on disk by (model, prompt), so a rerun costs nothing and gives the same result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from training.records import ProblemRecord

PROMPT_VERSION = "teacher-v1"
INSTRUCTIONS = """Rewrite the reference solution below as a chain of theorem applications, one block per step:
Theorem: <theorem id from the list> | <theorem name>
Cond: <why the theorem applies here>
Map: <role> = <object> = <value>; <role> = <object>
Exec: <the theorem's relation over the roles> => <object> = <value>
End with one line: Answer: <final answer>
Use only theorem ids from this list:
{theorems}"""


@dataclass
class TeacherConfig:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"   # name of the environment variable holding the key (never the key)
    cache_dir: str | Path = "runs/teacher-cache"
    max_new_tokens: int = 768
    max_theorems: int = 40                # theorem ids listed in the prompt (bank retrieval picks them)


@dataclass
class TeacherReport:
    accepted: list[ProblemRecord] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)   # {id, reason, response}
    requests: int = 0                                             # calls actually sent (cache misses)
    cached: int = 0

    @property
    def reasons(self) -> Counter:
        return Counter(r["reason"].split(":", 1)[0] for r in self.rejected)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": len(self.accepted), "rejected": len(self.rejected), "requests": self.requests,
                "cached": self.cached, "rejects_by_reason": dict(self.reasons.most_common())}


def build_prompt(record: ProblemRecord, theorem_lines: list[str]) -> str:
    return "\n\n".join([INSTRUCTIONS.format(theorems="\n".join(theorem_lines)), f"Problem: {record.question}",
                        f"Reference solution: {record.solution or ''}", f"Final answer: {record.answer}"])


def _theorem_lines(record: ProblemRecord, bank, limit: int) -> list[str]:
    try:
        hits = bank.retrieve(record.question, k=limit)
        return [f"{h.id} | {h.name}: {'; '.join(h.theorem.get('relations') or [])}" for h in hits]
    except Exception:  # noqa: BLE001 - a bank without retrieval: list theorems in bank order
        return [f"{t['id']} | {t['name']}: {'; '.join(t.get('relations') or [])}" for t in bank.all()[:limit]]


class ResponseCache:
    """One JSON file per (model, prompt) hash; written atomically so an interrupted run leaves no half file."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def key(self, model: str, prompt: str) -> str:
        return hashlib.sha256(f"{PROMPT_VERSION}\n{model}\n{prompt}".encode()).hexdigest()

    def get(self, key: str) -> str | None:
        path = self.root / key[:2] / f"{key}.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))["response"]
        return None

    def put(self, key: str, model: str, response: str) -> None:
        path = self.root / key[:2] / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"model": model, "response": response}, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)


def judge(record: ProblemRecord, response: str, bank) -> tuple[list[dict] | None, str]:
    """(steps, "") for an acceptable rewrite, else (None, reason)."""
    from model.answers import extract_answer, grade
    from model.checker import check_solution
    from model.solution_format import parse

    solution = parse(response, bank)
    if not solution.steps:
        return None, "no theorem steps in the response"
    unknown = [s.theorem for s in solution.steps if bank.get(s.theorem) is None]
    if unknown:
        return None, f"unknown theorem id: {unknown[0]}"
    if solution.answer is None:
        return None, "no Answer line"
    if not grade(extract_answer(f"Answer: {solution.answer}"), record.answer):
        return None, f"answer does not grade equal to the gold answer: {solution.answer[:60]!r} vs {record.answer!r}"
    for number, check in enumerate(check_solution(solution, bank=bank), 1):
        if check.status == "wrong":
            return None, f"step checks wrong: step {number}: {check.reason}"
    return [s.to_record() for s in solution.steps], ""


def rewrite(records: Iterable[ProblemRecord], config: TeacherConfig, bank=None, backend=None) -> TeacherReport:
    """Ask the teacher for every record (cache first) and sort the answers into accepted and rejected."""
    from model.backends import BackendError, OpenAIBackend
    from model.generation import GenerationOptions

    if bank is None:
        from theorem_bank import open_bank

        bank = open_bank()
    if backend is None:
        backend = OpenAIBackend(config.base_url, config.model, api_key=os.environ.get(config.api_key_env, ""))
    cache = ResponseCache(config.cache_dir)
    options = GenerationOptions(max_new_tokens=config.max_new_tokens)
    report = TeacherReport()
    for record in records:
        prompt = build_prompt(record, _theorem_lines(record, bank, config.max_theorems))
        key = cache.key(config.model, prompt)
        response = cache.get(key)
        if response is None:
            try:
                response = backend.generate([[{"role": "user", "content": prompt}]], options)[0]
            except BackendError as err:
                # Not cached: a failed call is retried on the next run.
                report.rejected.append({"id": record.id, "reason": f"request failed: {err}", "response": None})
                continue
            cache.put(key, config.model, response)
            report.requests += 1
        else:
            report.cached += 1
        steps, reason = judge(record, response, bank)
        if steps is None:
            report.rejected.append({"id": record.id, "reason": reason, "response": response})
        else:
            meta = dict(record.meta, teacher={"model": config.model, "prompt_version": PROMPT_VERSION})
            report.accepted.append(dataclasses.replace(record, steps=steps, meta=meta))
    return report
