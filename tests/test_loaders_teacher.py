"""Teacher rewriting of MATH solutions: acceptance rules, rejections with reasons, and the disk cache,
against real server processes on 127.0.0.1 (a scripted OpenAI-compatible stub, and `transformers serve`)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from training.loaders import load_math
from training.teacher import TeacherConfig, rewrite

FIXTURES = Path(__file__).parent / "fixtures" / "data"


class SeedBank:
    """The bank's theorems without its store (the teacher needs get/all; retrieval falls back to bank order)."""

    def __init__(self):
        from training.data.build import bank_theorems

        self.theorems = {t["id"]: t for t in bank_theorems()}

    def get(self, theorem_id):
        return self.theorems.get(theorem_id)

    def all(self):
        return list(self.theorems.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, process, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"server did not listen on port {port} within {seconds} s")


@pytest.fixture()
def stub_server():
    port = _free_port()
    process = subprocess.Popen([sys.executable, str(FIXTURES / "openai_stub_server.py"), str(port)])
    try:
        _wait_for(port, process, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _served(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/count", timeout=5) as response:
        return json.loads(response.read())["count"]


def test_teacher_accepts_only_checked_rewrites_and_caches_every_answer(stub_server, tmp_path):
    records = list(load_math(FIXTURES / "math" / "test.jsonl")) + list(load_math(FIXTURES / "math" / "math500_test.jsonl"))
    config = TeacherConfig(base_url=stub_server, model="stub", cache_dir=tmp_path / "cache", max_theorems=5)
    bank = SeedBank()
    report = rewrite(records, config, bank=bank)
    # 2+3 (twice: MATH and MATH-500) and the 3-4-5 triangle come back right; the others are rejected
    assert sorted(r.id for r in report.accepted) == ["math-test-0", "math-test-2", "test/prealgebra/1.json"]
    reasons = {r["id"]: r["reason"] for r in report.rejected}
    assert reasons["math-test-1"] == "unknown theorem id: no_such_theorem"
    assert reasons["test/algebra/2.json"].startswith("step checks wrong: step 1")
    # the MATH and MATH-500 copies of "2+3" make the same prompt: asked once, the second one is a cache hit
    assert report.requests == 4 and report.cached == 1 and _served(stub_server) == 4
    accepted = report.accepted[0]
    assert accepted.steps[0]["theorem"] == "pythagorean_theorem" and accepted.meta["teacher"]["model"] == "stub"

    again = rewrite(records, config, bank=bank)   # from the disk cache: no request, same outcome
    assert again.requests == 0 and again.cached == 5 and _served(stub_server) == 4
    assert again.to_dict() == dict(report.to_dict(), requests=0, cached=5)


def test_unreachable_teacher_is_a_counted_rejection_not_a_cache_entry(tmp_path):
    records = list(load_math(FIXTURES / "math" / "math500_test.jsonl"))
    config = TeacherConfig(base_url=f"http://127.0.0.1:{_free_port()}", model="none", cache_dir=tmp_path / "c")
    report = rewrite(records, config, bank=SeedBank())
    assert report.accepted == [] and report.reasons == {"request failed": 2}
    assert not any((tmp_path / "c").rglob("*.json"))


@pytest.mark.slow
def test_teacher_against_transformers_serve_with_the_tiny_model(tmp_path_factory, tmp_path):
    """The model layer's real local server: a random tiny model writes nothing acceptable; the accounting holds."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("`transformers serve` needs its serving extras: pip install 'transformers[serving]'")
    from model.tiny import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny-models", seed=0, init_std_permille=200)
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(checkpoint), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, process, 180)
        records = list(load_math(FIXTURES / "math" / "math500_test.jsonl"))
        config = TeacherConfig(base_url=f"http://127.0.0.1:{port}", model=str(checkpoint), cache_dir=tmp_path / "cache",
                               max_new_tokens=16, max_theorems=3)
        report = rewrite(records, config, bank=SeedBank())
        assert len(report.accepted) + len(report.rejected) == 2 and report.requests == 2
        assert all(r["reason"] and r["response"] is not None for r in report.rejected)
        again = rewrite(records, config, bank=SeedBank())
        assert again.requests == 0 and again.cached == 2 and again.to_dict()["rejected"] == report.to_dict()["rejected"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
