"""Dataset loaders: each turns one real format into ProblemRecords (training/records.py).

`load(source, path, **options)` dispatches by source name; see each module for its options.
"""
from __future__ import annotations

from typing import Iterator

from training.loaders.common import BadRecords, shared_data_dir
from training.loaders.formalgeo import load_formalgeo
from training.loaders.geoqa import load_geoqa
from training.loaders.hf import load_hf
from training.loaders.math import last_boxed, load_math
from training.loaders.records_jsonl import load_records
from training.records import ProblemRecord

LOADERS = {"geoqa": load_geoqa, "formalgeo7k": load_formalgeo, "math": load_math, "records": load_records,
           "hf": load_hf}


def load(source: str, path, **options) -> Iterator[ProblemRecord]:
    if source not in LOADERS:
        raise ValueError(f"unknown source {source!r}; choose from {sorted(LOADERS)}")
    return LOADERS[source](path, **options)


__all__ = ["BadRecords", "LOADERS", "ProblemRecord", "last_boxed", "load", "load_formalgeo", "load_geoqa", "load_hf",
           "load_math", "load_records", "shared_data_dir"]
