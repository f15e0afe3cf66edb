"""One evaluation run, as `evaluate.py run` and the Theorem-SFT experiment both do it: the checkpoint's serving
profile ("as trained") with only what the request names changed, problems loaded and probed, the backend opened
by model.backends.open_backend on the first batch, predictions written and summarised by the runner.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.evaluation.benchmarks import DEFAULT_MODE, load_benchmark
from training.evaluation.errors import EvaluationError
from training.evaluation.report import write_summary
from training.evaluation.runner import (EvalItem, RunSettings, backend_generator, check_run_file, evaluate_items,
                                        fingerprint_file)


@dataclass
class EvalRequest:
    """What to evaluate, with what, and where. Every `None` below means "as the checkpoint was trained"."""
    benchmark: str
    data: str
    out: str
    model: str = ""
    adapter: str | None = None
    backend: str = "local"
    base_url: str | None = None
    outputs: str | None = None           # replay backend: JSONL of {id, output}
    mode: str | None = None              # None: the benchmark's default (choice for geoqa/synthetic)
    limit: int | None = None
    splits: list[str] = field(default_factory=list)  # synthetic / formalgeo split names ([]: the benchmark's own)
    text_only: bool = False
    batch_size: int = 8
    probe: bool = False
    probe_seed: int = 0
    bank: str | None = None              # theorem bank SQLite file (None: the cache built from the seeds)
    device: str = "auto"
    threads: int = 0
    progress: bool = True
    # Serving-profile overrides (model.profile field -> value); the rest comes from the checkpoint.
    profile_dir: str | None = None       # folder whose serving_profile.json to use (default: adapter's, model's)
    overrides: dict[str, Any] = field(default_factory=dict)
    # Verifier-guided solving: {"samples": N, "temperature", "top_p", "seed"} ({}: one greedy chain per problem).
    sampling: dict[str, Any] = field(default_factory=dict)


def evaluation_profile(request: EvalRequest):
    """The serving profile to evaluate with, and {field: (trained, used)} for each override that changes it."""
    from model.loading import checkpoint_profile
    from model.profile import load_profile

    trained = load_profile(request.profile_dir) if request.profile_dir else \
        checkpoint_profile(request.model or None, request.adapter)
    changes = {name: value for name, value in request.overrides.items() if value is not None or name == "point_names"}
    try:
        profile = trained.replace(**changes)
    except TypeError as err:
        raise EvaluationError(f"unknown serving-profile setting in {sorted(changes)}: {err}") from None
    differs = {name: (getattr(trained, name), value) for name, value in changes.items()
               if getattr(trained, name) != value}
    return profile, differs


def build_items(records, benchmark: str, mode: str, probe: bool, probe_seed: int,
                out_dir: Path) -> tuple[list[EvalItem], str]:
    from training.evaluation.probes import probe_variants, synthetic_hooks

    hooks = synthetic_hooks(out_dir / "probe_images") if probe and benchmark == "synthetic" else (None, None, "")
    items = []
    for record in records:
        record_mode = "choice" if mode == "choice" and record.choices else "direct"
        items.append(EvalItem(key=record.id, record=record, variant="original", mode=record_mode))
        if probe:
            for variant, probed in probe_variants(record, benchmark, probe_seed, hooks):
                if variant == "shuffle" and record_mode != "choice":
                    continue  # choices are not shown in direct mode, so their order cannot matter
                items.append(EvalItem(key=f"{record.id}#{variant}", record=probed, variant=variant, mode=record_mode))
    return items, hooks[2]


class LazyGenerator:
    """Opens the backend on the first batch only, so resuming a finished run costs no model load."""

    def __init__(self, factory):
        self.factory, self.generator = factory, None

    def __call__(self, prompts):
        if self.generator is None:
            self.generator = self.factory()
        return self.generator(prompts)


def load_records(request: EvalRequest) -> list:
    splits = request.splits or [None]
    records = []
    for split in splits:
        records += load_benchmark(request.benchmark, request.data, limit=request.limit, split=split,
                                  text_only=request.text_only)
    if not records:
        raise EvaluationError(f"{request.data} gave no records for --benchmark {request.benchmark}")
    return records


def run_evaluation(request: EvalRequest) -> dict | None:
    """Run (or resume) one evaluation; the summary on rank 0, None on other ranks of a sharded run."""
    from model.backends import open_backend

    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    mode = request.mode or DEFAULT_MODE[request.benchmark]
    if request.backend in ("local", "vllm") and not request.model and not request.adapter:
        raise EvaluationError("--model is required (a checkpoint folder or hub id; `python -m model.tiny OUT` builds a tiny one)")

    records = load_records(request)
    profile, differs = evaluation_profile(request)
    if differs and rank == 0:
        listed = ", ".join(f"{name} {used!r} (trained: {was!r})" for name, (was, used) in differs.items())
        print(f"note: evaluating with settings this checkpoint was not trained with: {listed}", file=sys.stderr)
    settings = RunSettings(
        benchmark=request.benchmark, data=str(request.data), model=str(request.model or ""), adapter=request.adapter,
        backend=request.backend, mode=mode, batch_size=request.batch_size, limit=request.limit, probe=request.probe,
        probe_seed=request.probe_seed, profile=profile, data_fingerprint=fingerprint_file(request.data),
        base_url=request.base_url, sampling=dict(request.sampling),
    )
    out_dir = Path(request.out)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        check_run_file(out_dir, settings)  # before loading a model: fail fast on a mismatched folder
    items, probe_note = build_items(records, request.benchmark, mode, request.probe, request.probe_seed, out_dir)
    if probe_note and rank == 0:
        print(f"probes: {probe_note}", file=sys.stderr)

    from theorem_bank import open_bank

    # A bank file of one's own (--bank) that is only used lexically is built without embeddings; the shared
    # default file is left to its usual build, so that hybrid retrieval elsewhere keeps its dense half.
    lexical_only = profile.prompt_theorems == 0 or profile.retrieval_mode == "bm25"
    bank = open_bank(request.bank, dense=False if request.bank and lexical_only else None)
    device = request.device
    if device == "auto" and world_size > 1:
        import torch

        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if request.threads:
        import torch

        torch.set_num_threads(request.threads)

    def open_generator():
        backend = open_backend(request.backend, model=request.model or None, adapter=request.adapter,
                               base_url=request.base_url, outputs=request.outputs, profile=profile, device=device,
                               batch_size=request.batch_size)
        return backend_generator(backend, profile.generation_options(), sampling=request.sampling)

    # A BackendError (server down, model missing) reaches the command line, which prints it as one line.
    lines = evaluate_items(items, settings, out_dir, LazyGenerator(open_generator), bank=bank, rank=rank,
                           world_size=world_size, progress=request.progress)
    if lines is None:
        return None
    return write_summary(out_dir, lines, settings.to_dict())
