"""model.worker: the tiny model in a child process answers as it does in this one, stops generating when the
reader stops, reports its load and request errors with their own types, and comes back after being killed."""
from __future__ import annotations

import os
import signal
import time

import pytest
from PIL import Image

from model.backends import BackendError, open_backend
from model.generation import GenerationOptions
from model.images import ImageError
from model.loading import ModelLoadError
from model.prompting import build_messages

QUESTION = "In triangle ABC, ∠A = 50° and ∠B = 60°. Find ∠C."


def wait_until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def worker(tiny_model_dir):
    backend = open_backend("local", model=str(tiny_model_dir), device="cpu", own_process=True)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def here(tiny_model_dir):
    return open_backend("local", model=str(tiny_model_dir), device="cpu")


def test_answers_equal_the_in_process_backend(worker, here):
    options = GenerationOptions(max_new_tokens=12)
    diagram = Image.new("RGB", (120, 90), "white")
    conversations = [build_messages(QUESTION), build_messages("Find x.", image=diagram)]
    assert worker.generate(conversations, options) == here.generate(conversations, options)
    streamed = list(worker.stream(conversations[1], options))
    assert len(streamed) > 1 and "".join(streamed) == here.generate(conversations[1:], options)[0]
    assert worker.profile == here.profile
    assert worker.describe()["process"] == "own" and worker.process.pid != os.getpid()


def test_closing_a_stream_stops_the_generation_in_the_worker(worker):
    # 100,000 tokens would keep the worker busy for many minutes: only the cancel can end it in time
    pieces = worker.stream(build_messages(QUESTION), GenerationOptions(max_new_tokens=100_000))
    next(pieces)
    assert worker.in_flight() == 1
    pieces.close()
    assert wait_until(lambda: worker.in_flight() == 0), "the worker kept generating after the reader stopped"
    assert worker.generate([build_messages(QUESTION)], GenerationOptions(max_new_tokens=2))  # and still serves


def test_a_request_error_arrives_with_its_type_and_the_worker_keeps_serving(worker, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        list(worker.stream(build_messages("Find x.", image=str(broken)), GenerationOptions(max_new_tokens=2)))
    assert worker.generate([build_messages(QUESTION)], GenerationOptions(max_new_tokens=2))


def test_a_load_failure_is_raised_where_the_model_is_first_needed(tmp_path):
    backend = open_backend("local", model=str(tmp_path / "no-such-model"), device="cpu", own_process=True)
    try:
        with pytest.raises(ModelLoadError, match="no-such-model"):
            backend.profile
    finally:
        backend.close()


def test_a_killed_worker_fails_its_requests_clearly_then_starts_again(tiny_model_dir):
    backend = open_backend("local", model=str(tiny_model_dir), device="cpu", own_process=True)
    try:
        pieces = backend.stream(build_messages(QUESTION), GenerationOptions(max_new_tokens=100_000))
        next(pieces)
        first = backend.process.pid
        os.kill(first, signal.SIGKILL)
        with pytest.raises(BackendError, match="model process ended"):
            for _ in pieces:
                pass
        assert backend.generate([build_messages(QUESTION)], GenerationOptions(max_new_tokens=2))
        assert backend.process.pid != first
    finally:
        backend.close()

