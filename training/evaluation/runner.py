"""The evaluation loop: prompts -> batched generation -> scoring -> predictions.jsonl, resumable and sharded.

Crash safety: every prediction is one JSON line written with a single `write` on an append-only file
and fsync'd before the next chunk of batches starts. A torn last line (the process was killed mid-write) is cut
off on restart, a corrupt line elsewhere is set aside in predictions.jsonl.rejected (every valid line
is kept), finished ids are skipped, and the summary is computed from the file alone, so an
interrupted-then-resumed run ends with the same summary as an uninterrupted one.

Sharding: with N processes (`accelerate launch` sets RANK / WORLD_SIZE), problem i of the dataset goes
to rank i % N; each rank appends to its own `predictions.rank<r>.jsonl`. Rank 0, when every problem
has a line somewhere, merges all lines into predictions.jsonl in dataset order. No collective
communication is needed, so ranks never wait on each other's timeouts.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from model.point_names import Renaming
from model.profile import default_profile, profile_from_dict
from training.evaluation.categories import categories
from training.evaluation.errors import EvaluationError
from training.evaluation.scoring import formalgeo_alias_map, score_output

PREDICTIONS = "predictions.jsonl"
RUN_FILE = "run.json"
BENCHMARKS = ("geoqa", "formalgeo", "math", "synthetic")
CHUNK_BATCHES = 4  # problems handed to the generator at once, in batches: see evaluate_items


@dataclass
class RunSettings:
    """What was evaluated and how. Everything in result_key() changes results; a resume must match it.

    `profile` is the serving profile (model.profile) the problems were prompted and decoded with: the
    checkpoint's own unless the command overrode some of it. Its fields go into run.json one by one.
    """
    benchmark: str
    data: str
    model: str = ""
    adapter: str | None = None
    backend: str = "local"
    mode: str = "choice"                 # choice: options shown, letter graded; direct: value graded
    batch_size: int = 8
    limit: int | None = None
    probe: bool = False
    probe_seed: int = 0
    profile: Any = None                  # ServingProfile or its dict; None: the documented default
    data_fingerprint: str = ""
    base_url: str | None = None
    # Verifier-guided solving: {"samples": N, "temperature", "top_p", "seed"}; {} is one greedy chain per problem.
    sampling: dict[str, Any] = field(default_factory=dict)

    RESULT_FIELDS = ("benchmark", "data_fingerprint", "model", "adapter", "backend", "mode", "probe", "probe_seed")
    # Where the profile came from, not how it prompts or decodes.
    PROFILE_INFO = ("origin", "longest_target_tokens")

    def __post_init__(self):
        if self.profile is None:
            self.profile = default_profile()
        if isinstance(self.profile, dict):
            self.profile = profile_from_dict(self.profile, "run settings")

    def result_key(self) -> dict[str, Any]:
        key = {name: getattr(self, name) for name in self.RESULT_FIELDS}
        if self.sampling:  # only sampled runs carry it, so greedy run folders made before it still resume
            key["sampling"] = dict(self.sampling)
        key.update({f"profile.{name}": value for name, value in self.profile.to_dict().items()
                    if name not in self.PROFILE_INFO})
        return key

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "profile": self.profile.to_dict()}


@dataclass
class EvalItem:
    """One problem as it is shown to the model: the original record or a probed variant of it."""
    key: str
    record: Any
    variant: str = "original"
    mode: str = "choice"


# A generator takes a batch of prompts ({"messages", "image"}) and returns one text per prompt.
Generator = Callable[[Sequence[dict]], list[str]]


def fingerprint_file(path: str | Path) -> str:
    """sha256 of a data file (or of the sorted file list + sizes of a folder): resumes must use the same data."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json")):
            digest.update(f"{child.relative_to(path)}:{child.stat().st_size}\n".encode())
    else:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- the prediction log

def read_predictions(path: Path) -> tuple[list[dict], int]:
    """Every valid line of a prediction file, and the byte length of its newline-terminated lines.

    A line counts if it ends with a newline and parses as a JSON object with a "key". A corrupt line in the
    middle (a bad disk block, a hand edit) is passed over, never the valid lines after it; anything after the
    last newline is a torn write from a killed process.
    """
    lines, _, _, complete = scan_predictions(path)
    return lines, complete


def scan_predictions(path: Path) -> tuple[list[dict], list[bytes], list[tuple[int, bytes]], int]:
    """(valid lines, their raw bytes, [(line number, raw bytes)] of the corrupt ones, bytes of whole lines)."""
    if not path.exists():
        return [], [], [], 0
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    lines, raw, bad = [], [], []
    for number, chunk in enumerate(data[:complete].split(b"\n")[:-1], start=1):
        if not chunk.strip():
            continue
        try:
            obj = json.loads(chunk)
        except (json.JSONDecodeError, UnicodeDecodeError):
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("key"), str):
            lines.append(obj)
            raw.append(chunk)
        else:
            bad.append((number, chunk))
    return lines, raw, bad, complete


def repair_tail(path: Path) -> int:
    """Make `path` hold only valid lines: cut a torn tail, set corrupt lines aside in `<path>.rejected` (saying
    which), keep every valid line. Returns the number of bytes removed from `path`."""
    if not path.exists():
        return 0
    lines, raw, bad, complete = scan_predictions(path)
    size = path.stat().st_size
    if bad:
        rejected = path.with_name(path.name + ".rejected")
        with rejected.open("ab") as fh:  # set aside before the file loses them
            fh.write(b"".join(chunk + b"\n" for _, chunk in bad))
            fh.flush()
            os.fsync(fh.fileno())
        numbers = ", ".join(str(n) for n, _ in bad[:10]) + (" ..." if len(bad) > 10 else "")
        print(f"{path}: {len(bad)} corrupt line(s) ({numbers}) set aside in {rejected}; their problems are "
              f"evaluated again, the {len(lines)} valid lines are kept", file=sys.stderr)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(b"".join(chunk + b"\n" for chunk in raw))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    elif complete < size:
        with path.open("r+b") as fh:
            fh.truncate(complete)
            fh.flush()
            os.fsync(fh.fileno())
    return size - path.stat().st_size


class PredictionWriter:
    """Append-only JSONL writer: one `os.write` per line, fsync per batch."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, lines: Iterable[dict]) -> None:
        payload = b"".join((json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8") for line in lines)
        if payload:
            os.write(self.fd, payload)
            os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def shard_path(out_dir: Path, rank: int) -> Path:
    return out_dir / f"predictions.rank{rank}.jsonl"


def collect_done(out_dir: Path) -> dict[str, dict]:
    """Every finished prediction in the run folder, from the merged file and any shard files."""
    done: dict[str, dict] = {}
    for path in [out_dir / PREDICTIONS, *sorted(out_dir.glob("predictions.rank*.jsonl"))]:
        for line in read_predictions(path)[0]:
            done.setdefault(line["key"], line)
    return done


def merge_predictions(out_dir: Path, keys_in_order: Sequence[str]) -> list[dict]:
    """Write predictions.jsonl in dataset order from every line found; remove the shard files."""
    done = collect_done(out_dir)
    order = {key: i for i, key in enumerate(keys_in_order)}
    ordered = sorted(done.values(), key=lambda line: (order.get(line["key"], len(order)), line["key"]))
    target = out_dir / PREDICTIONS
    tmp = out_dir / (PREDICTIONS + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in ordered:
            fh.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(target)
    for shard in out_dir.glob("predictions.rank*.jsonl"):
        shard.unlink()
    return [line for line in ordered if line["key"] in order]


# --------------------------------------------------------------------------- the run

def check_run_file(out_dir: Path, settings: RunSettings) -> None:
    """Refuse to mix predictions made with different settings in one folder."""
    path = out_dir / RUN_FILE
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        old = previous.get("result_key", {})
        new = json.loads(json.dumps(settings.result_key()))
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            details = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise EvaluationError(f"{out_dir} holds predictions made with other settings ({details}). "
                             f"Use another --out, or delete {out_dir} to start over.")


def write_run_file(out_dir: Path, settings: RunSettings) -> None:
    payload = {"settings": settings.to_dict(), "result_key": settings.result_key()}
    tmp = out_dir / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out_dir / RUN_FILE)


def build_prompt(item: EvalItem, settings: RunSettings, bank) -> dict:
    """One problem's prompt, built by model.prompting.problem_prompt from the run's serving profile."""
    from model.prompting import problem_prompt

    record = item.record
    choices = record.choices if item.mode == "choice" else None
    image = record.image or None
    if image is not None and not Path(image).is_file():
        raise EvaluationError(f"problem {record.id}: its diagram {image} does not exist; fix the data, or run with "
                         f"--text-only to evaluate without diagrams")
    prompt = problem_prompt(record.question, choices, image, bank, settings.profile)
    return {"key": item.key, "messages": prompt.messages, "image": image, "theorem_ids": prompt.theorem_ids,
            "renamed_points": prompt.renaming.forward}


def backend_generator(backend, options=None, sampling: dict | None = None) -> "Generator":
    """A model.backends backend as the runner's generator: the batch's conversations in, one text each out.

    With sampling {"samples": N, ...} and N > 1 each prompt gets what the tutor's page gets: the greedy chain (the
    one the page streams) and N - 1 chains sampled in one batch, as a list; prediction_line selects among them."""
    samples = int((sampling or {}).get("samples") or 1)

    def generate(prompts: Sequence[dict]) -> list:
        import dataclasses

        from model.generation import GenerationOptions

        conversations = [p["messages"] for p in prompts]
        greedy = backend.generate(conversations, options, keys=[p["key"] for p in prompts])
        if samples <= 1:
            return greedy
        base = options or GenerationOptions()
        extra = dataclasses.replace(base, do_sample=True, num_samples=samples - 1,
                                    temperature=float(sampling.get("temperature", 0.7)),
                                    top_p=float(sampling.get("top_p", 0.95)), top_k=0, seed=sampling.get("seed"))
        more = backend.sample(conversations, extra)
        return [[first, *rest] for first, rest in zip(greedy, more)]

    return generate


def evaluate_items(items: Sequence[EvalItem], settings: RunSettings, out_dir: str | Path, generate: Generator, *,
                   bank=None, rank: int = 0, world_size: int = 1, progress: bool = True) -> list[dict] | None:
    """Run (or resume) the evaluation of `items`. Returns the merged predictions on rank 0, None elsewhere."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        check_run_file(out_dir, settings)
        write_run_file(out_dir, settings)
    own_file = out_dir / PREDICTIONS if world_size == 1 else shard_path(out_dir, rank)
    repair_tail(own_file)
    done = collect_done(out_dir)
    mine = [item for i, item in enumerate(items) if i % world_size == rank and item.key not in done]
    alias_map = formalgeo_alias_map(bank) if settings.benchmark == "formalgeo" else {}

    writer = PredictionWriter(own_file)
    bar = _progress(len(mine), f"eval rank {rank}" if world_size > 1 else "eval", enabled=progress)

    def score_and_write(batch, prompts, outputs, latency) -> None:
        # the model wrote the renamed points; the problem's own names come back before grading
        outputs = [_restore(Renaming(prompt["renamed_points"]), output) for prompt, output in zip(prompts, outputs)]
        lines = [prediction_line(item, prompt, output, settings, bank, alias_map, latency)
                 for item, prompt, output in zip(batch, prompts, outputs)]
        writer.write(lines)
        bar.update(len(batch))

    # The generator gets CHUNK_BATCHES batches' worth of problems at a time, so a continuously batching
    # backend (model.continuous, vLLM) keeps its batch_size slots full and only a chunk's end runs part-empty.
    # Checking and grading chunk k (one scorer thread) overlap building and generating chunk k+1 here. At most
    # one chunk is in flight, so lines are written in chunk order and a kill loses at most two chunks' work,
    # which the resume redoes; the scorer's error is raised here, before the next chunk is handed to it.
    chunk = max(1, settings.batch_size) * CHUNK_BATCHES
    try:
        # Leaving the `with` waits for the chunk in flight, so it is written even when generation fails.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eval-scorer") as scorer:
            pending = None
            for start in range(0, len(mine), chunk):
                batch = mine[start:start + chunk]
                prompts = [build_prompt(item, settings, bank) for item in batch]
                began = time.perf_counter()
                outputs = generate(prompts)
                latency = (time.perf_counter() - began) / len(batch)
                if len(outputs) != len(batch):
                    raise RuntimeError(f"the generator returned {len(outputs)} outputs for a batch of {len(batch)}")
                if pending is not None:
                    pending.result()
                pending = scorer.submit(score_and_write, batch, prompts, outputs, latency)
            if pending is not None:
                pending.result()
    finally:
        writer.close()
        bar.close()

    if rank != 0:
        return None
    keys = [item.key for item in items]
    _wait_for_all(out_dir, set(keys), world_size)
    return merge_predictions(out_dir, keys)


def _restore(renaming: Renaming, output):
    if isinstance(output, str):
        return renaming.restore(output)
    if isinstance(output, list):  # N sampled chains
        return [renaming.restore(text) if isinstance(text, str) else text for text in output]
    return output


def select_sample(item: EvalItem, texts: list[str], bank) -> tuple[str, dict]:
    """The chain the tutor would show (model.selection, as the app chooses) and what the selection saw."""
    from model.grounding import problem_context
    from model.selection import select

    record = item.record
    choices = record.choices if item.mode == "choice" else None
    context = problem_context(record.question, choices, (record.meta or {}).get("letters"))
    selection = select(texts, context, choices, bank)
    chosen = selection.chosen
    return chosen.text, {"chosen": chosen.index, "agree": selection.agree, "total": selection.total,
                         "confidence": selection.confidence, "values": [c.value for c in selection.candidates],
                         "chain_ok": [c.chain_ok for c in selection.candidates]}


def prediction_line(item: EvalItem, prompt: dict, output, settings: RunSettings, bank, alias_map, latency: float) -> dict:
    record = item.record
    samples, selection = None, None
    if isinstance(output, list):
        samples = [text if isinstance(text, str) else "" for text in output]
        output, selection = select_sample(item, samples, bank)
    line = {
        "key": item.key,
        "id": record.id,
        "variant": item.variant,
        "benchmark": settings.benchmark,
        "mode": item.mode,
        "split": record.split,
        "categories": categories(record, settings.benchmark),
        "has_image": prompt["image"] is not None,
        "theorems_offered": prompt["theorem_ids"],
        "prompt_version": settings.profile.prompt_version,
        "output": output,
        "latency_s": round(latency, 4),
        "renamed_points": prompt.get("renamed_points") or {},
    }
    line.update(score_output(record, output, mode=item.mode, bank=bank, alias_map=alias_map))
    if samples is not None:
        line["samples"] = samples
        line["selection"] = selection
    return line


def _wait_for_all(out_dir: Path, keys: set[str], world_size: int, poll: float = 0.5) -> None:
    """Rank 0 waits until every other rank has written all its lines (the launcher kills us if one dies)."""
    if world_size == 1:
        return
    announced = False
    while not keys <= set(collect_done(out_dir)):
        if not announced:
            print(f"rank 0 finished its shard; waiting for {world_size - 1} other rank(s)", file=sys.stderr)
            announced = True
        time.sleep(poll)


class _NullBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled or total == 0:
        return _NullBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="problem", file=sys.stderr)
