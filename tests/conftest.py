"""Session-wide fixtures: the tiny Qwen2.5-VL checkpoint and the location of the real data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tiny models run several times faster on one thread than on two contended ones, and pytest may share
# the machine with other jobs; subprocesses (servers, accelerate ranks) inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the third-party evaluation data lives (never copied into the repo)."""
    return Path(os.environ.get("THEOREM_TUTOR_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set THEOREM_TUTOR_DATA); this test reads the shared datasets")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2_5_VLForConditionalGeneration checkpoint, built once per test session."""
    from model.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-qwen2.5-vl"), seed=0)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep build artifacts (the theorem bank DB, caches) of a test session out of the user's cache."""
    if "THEOREM_TUTOR_CACHE" not in os.environ:
        os.environ["THEOREM_TUTOR_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(autouse=True, scope="session")
def _sandbox_started():
    """math-verify runs in worker processes (model.sandbox), forked from a server that imports sympy and
    math-verify once: start it here, outside every test's timeout, instead of inside the first grading test."""
    from model import sandbox

    sandbox.shared().warm()
    yield
    sandbox.shared().close()
