"""Session-wide fixtures: the tiny Qwen2.5-VL checkpoint and the location of the real data."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Tiny models run several times faster on one thread than on two contended ones, and pytest may share
# the machine with other jobs; subprocesses (servers, accelerate ranks) inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]

# Everything a test session writes outside its tmp_path lands in one folder, removed at exit: the theorem bank's
# cache, `datasets`' Arrow cache (load_dataset on local files), Gradio's upload folder, and the ~/.cache of
# libraries that follow XDG (fontconfig, Chromium, torch extensions). Set here, at conftest import, because
# `datasets` and `gradio` read their folders when they are imported, which collecting a test module does.
SESSION_DIR = Path(tempfile.mkdtemp(prefix="theorem-tutor-tests-"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)
for _var, _sub in {"THEOREM_TUTOR_CACHE": "theorem-tutor", "HF_DATASETS_CACHE": "hf-datasets",
                   "GRADIO_TEMP_DIR": "gradio", "XDG_CACHE_HOME": "xdg-cache", "XDG_CONFIG_HOME": "xdg-config",
                   "TORCH_EXTENSIONS_DIR": "torch-extensions", "MPLCONFIGDIR": "matplotlib"}.items():
    os.environ[_var] = str(SESSION_DIR / _sub)
# Subprocesses (app servers, accelerate/torchrun ranks) make their temporary files there too: torchelastic's run
# folders and multiprocessing's pymp-* folders outlive a process that a test terminates. This process already
# chose its own temporary folder above (tempfile caches it), so pytest's tmp_path stays where pytest puts it.
(SESSION_DIR / "tmp").mkdir()
os.environ["TMPDIR"] = str(SESSION_DIR / "tmp")


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
def _sandbox_started():
    """math-verify runs in worker processes (model.sandbox), forked from a server that imports sympy and
    math-verify once: start it here, outside every test's timeout, instead of inside the first grading test."""
    from model import sandbox

    sandbox.shared().warm()
    yield
    sandbox.shared().close()
