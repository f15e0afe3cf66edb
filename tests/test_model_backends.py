"""Backends behind one interface. OpenAIBackend is tested against a real `transformers serve` process on
127.0.0.1 serving the tiny Qwen2.5-VL checkpoint (images included), and compared with LocalBackend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import torch

from model.backends import BackendError, LocalBackend, OpenAIBackend
from model.generation import GenerationOptions
from model.images import CELL, ImageOptions
from model.prompting import build_messages
from model.smoke import ASSETS
from model.tiny import tiny_checkpoint

IMAGES = ImageOptions(min_pixels=4 * CELL * CELL, max_pixels=16 * CELL * CELL)
GREEDY = GenerationOptions(max_new_tokens=16)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny-models", seed=0, init_std_permille=200)


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    """`transformers serve` in its own process, preloading the tiny checkpoint; yields its base URL."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("`transformers serve` needs its serving extras (openai, fastapi, uvicorn): pip install 'transformers[serving]'")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(log.parent / "hub"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(checkpoint),
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]  # fmt: skip
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"transformers serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"transformers serve did not listen on port {port} within 180 s:\n{log.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def local(checkpoint):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is faster and leaves a core to the server process
    yield LocalBackend.load(checkpoint, image_options=IMAGES)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def conversations():
    return [
        build_messages("Find ∠GHC.", choices=["50°", "130°"], image=str(ASSETS / "example_parallel_lines.png")),
        build_messages("AB = 3, BC = 4 and ∠B = 90°. How long is AC?"),
        build_messages("Find the radius.", image=str(ASSETS / "example_parallel_lines.png")),
    ]


def test_server_answers_equal_local_greedy_answers(server, checkpoint, local, conversations):
    remote = OpenAIBackend(server, str(checkpoint), image_options=IMAGES)
    remote_answers = remote.generate(conversations, GREEDY)  # sent concurrently; order must be kept
    local_answers = local.generate(conversations, GREEDY)
    assert len(set(local_answers)) == len(conversations)
    # transformers serve strips surrounding whitespace from non-streamed content; the tokens are the same.
    assert [a.strip() for a in remote_answers] == [a.strip() for a in local_answers]


def test_server_streaming_matches_local_streaming(server, checkpoint, local, conversations):
    remote = OpenAIBackend(server, str(checkpoint), image_options=IMAGES)
    for conversation in conversations[:2]:
        pieces = list(remote.stream(conversation, GREEDY))
        assert len(pieces) > 1
        local_text = "".join(local.stream(conversation, GREEDY))
        # The server holds back a trailing half-generated UTF-8 character and never flushes it; ours emits U+FFFD.
        assert "".join(pieces) == local_text.rstrip("\ufffd")


def test_unknown_model_on_the_server_is_a_backend_error(server):
    remote = OpenAIBackend(server, "no-such-org/no-such-model", timeout=60)
    with pytest.raises(BackendError, match="HTTP"):
        remote.generate([build_messages("Find x.")], GenerationOptions(max_new_tokens=2))


def test_unreachable_server_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    remote = OpenAIBackend(url, "tiny", timeout=5)
    with pytest.raises(BackendError, match=rf"cannot reach an OpenAI-compatible server at {url}/v1.*vllm serve"):
        remote.generate([build_messages("Find x.")], GREEDY)
    with pytest.raises(BackendError, match="cannot reach"):
        remote.stream(build_messages("Find x."), GREEDY)


def test_openai_request_shape():
    remote = OpenAIBackend("http://127.0.0.1:9/v1/", "qwen", api_key="k", image_options=IMAGES)
    body = remote.request_body(
        build_messages("Find x.", image=str(ASSETS / "example_parallel_lines.png")),
        GenerationOptions(max_new_tokens=7, do_sample=True, temperature=0.5, top_p=0.9, top_k=5, seed=3),
        streaming=True,
    )
    assert remote.base_url == "http://127.0.0.1:9/v1"
    assert body["stream"] is True and body["max_tokens"] == 7 and body["seed"] == 3
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.5, 0.9, 5)
    system, user = body["messages"]
    assert system["role"] == "system" and isinstance(system["content"], str)
    image_part, text_part = user["content"]
    assert image_part["type"] == "image_url" and image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert text_part == {"type": "text", "text": "Find x."}
    assert remote.request_body(build_messages("x"), None, streaming=False)["temperature"] == 0.0  # greedy


def test_control_tokens_a_server_leaves_in_are_not_content():
    from model.backends import strip_control_tokens

    assert strip_control_tokens("∠A<|box_start|> = 50°<|im_end|>") == "∠A = 50°"
    assert strip_control_tokens("a <| b |> c") == "a <| b |> c"  # only the template's own token syntax
