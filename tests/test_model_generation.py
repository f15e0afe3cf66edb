"""Generation on a tiny random Qwen2.5-VL: batched == one-by-one (left padding, mrope positions), streaming ==
non-streaming, sampling options, and bad input surfacing as clear errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageDraw

from model.continuous import ContinuousDecoder, supports
from model.generation import SCHEDULERS, GenerationOptions, generate, generate_completions, prepare_inputs, stream
from model.images import CELL, ImageError, ImageOptions
from model.loading import load_model
from model.prompting import build_messages
from model.smoke import ASSETS
from model.tiny import tiny_checkpoint

IMAGES = ImageOptions(min_pixels=4 * CELL * CELL, max_pixels=16 * CELL * CELL)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    # A larger init std than usual, so that answers depend on the prompt: with the usual 0.02 a random model
    # says the same thing to everyone and a padding bug would go unnoticed.
    path = tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny-models", seed=0, init_std_permille=200)
    return load_model(path)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # A tiny model is dominated by per-op overhead: one thread is several times faster than two fighting
    # with other processes, and keeps this module inside its time budget on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def diagram(width: int, height: int, seed: int) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.line((seed * 7 % width, 0, width - 1, height - 1), fill="black", width=3)
    draw.ellipse((10, 10, 10 + seed * 5, 10 + seed * 5), outline="black")
    return image


@pytest.fixture(scope="module")
def conversations():
    return [
        build_messages("Find ∠GHC.", choices=["50°", "130°", "40°", "140°"], image=str(ASSETS / "example_parallel_lines.png")),
        build_messages("AB = 3, BC = 4 and ∠B = 90°. How long is AC?"),
        build_messages("x?", image=diagram(300, 90, 1)),
        build_messages("In the circle O, the inscribed angle ∠ACB = 35°. Find the central angle ∠AOB.", image=diagram(120, 200, 2)),
        build_messages("Two angles form a linear pair; one is 70°."),
    ]


def test_batched_greedy_equals_one_by_one(loaded, conversations):
    options = GenerationOptions(max_new_tokens=16)
    batch = prepare_inputs(loaded, conversations, IMAGES)
    mask = batch["attention_mask"]
    assert (mask[:, 0] == 0).any() and (mask[:, -1] == 1).all()  # prompts differ in length: left padding is used
    one_by_one = [generate(loaded, [c], options, IMAGES, scheduler="static")[0] for c in conversations]
    assert len(set(one_by_one)) > 1  # answers depend on the prompt, so the comparison below has teeth
    for scheduler in SCHEDULERS:
        assert generate(loaded, conversations, options, IMAGES, len(conversations), scheduler) == one_by_one
        assert generate(loaded, conversations, options, IMAGES, 2, scheduler) == one_by_one


def _stops_at_different_lengths(loaded, conversations, monkeypatch, length: int = 30) -> list[list[int]]:
    """Make tokens the chains write at different points stop tokens, so that they end at different lengths (a
    random tiny model rarely writes its end-of-text token); returns the chains' tokens before the change."""
    decoder = ContinuousDecoder(loaded.model, lambda chunk: prepare_inputs(loaded, chunk, IMAGES), set(),
                                max_new_tokens=length, slots=len(conversations))
    chains = [finished.tokens for finished in decoder.run(conversations)]
    stops = {chains[0][3], chains[2][11], chains[3][20]}
    monkeypatch.setattr(loaded.model.generation_config, "eos_token_id", sorted(stops))
    return chains


@pytest.mark.parametrize("penalty", [None, 1.3])
def test_continuous_batching_equals_model_generate_one_by_one(loaded, conversations, monkeypatch, penalty):
    # Chains end at different steps, so rows leave and newcomers (with and without a diagram, prompts of other
    # lengths) join a running cache; every answer must still be the one model.generate gives it alone.
    _stops_at_different_lengths(loaded, conversations, monkeypatch)
    options = GenerationOptions(max_new_tokens=30, repetition_penalty=penalty)
    alone = [generate_completions(loaded, [c], options, IMAGES, scheduler="static")[0] for c in conversations]
    assert len({c.num_tokens for c in alone}) >= 3 and any(c.finished for c in alone)
    for slots in (1, 2, 3):
        together = generate_completions(loaded, conversations, options, IMAGES, batch_size=slots)
        assert together == alone, f"{slots} slots"


def test_continuous_batching_skips_the_padded_steps_of_static_batches(loaded, conversations, monkeypatch):
    _stops_at_different_lengths(loaded, conversations, monkeypatch)
    options = GenerationOptions(max_new_tokens=30)
    lengths = [c.num_tokens for c in generate_completions(loaded, conversations, options, IMAGES, scheduler="static")]
    slots = 2
    # model.generate decodes each batch of 2 until its longer chain ends (its first token comes from the prefill)
    static_steps = sum(max(lengths[i:i + slots]) - 1 for i in range(0, len(lengths), slots))
    decoder = ContinuousDecoder(loaded.model, lambda chunk: prepare_inputs(loaded, chunk, IMAGES),
                                set(loaded.model.generation_config.eos_token_id), max_new_tokens=30, slots=slots)
    assert [len(f.tokens) for f in decoder.run(conversations)] == lengths
    assert decoder.steps < static_steps


def test_sampling_and_extra_logits_processors_stay_with_model_generate(loaded, monkeypatch):
    assert supports(loaded.model, GenerationOptions())
    assert not supports(loaded.model, GenerationOptions(do_sample=True))
    monkeypatch.setattr(loaded.model.generation_config, "no_repeat_ngram_size", 2)
    assert not supports(loaded.model, GenerationOptions())


def test_streaming_concatenates_to_the_non_streaming_answer(loaded, conversations):
    options = GenerationOptions(max_new_tokens=24)
    for conversation in conversations[:3]:
        pieces = list(stream(loaded, conversation, options, IMAGES))
        assert len(pieces) > 1
        assert "".join(pieces) == generate(loaded, [conversation], options, IMAGES)[0]


def test_stream_stops_generating_when_the_reader_stops(loaded, conversations):
    calls = []
    hook = loaded.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        pieces = stream(loaded, conversations[1], GenerationOptions(max_new_tokens=400), IMAGES)
        next(pieces)
        pieces.close()  # the app does this when the student presses stop
    finally:
        hook.remove()
    assert 1 <= len(calls) < 100


def test_completion_counts_tokens_and_reports_truncation(loaded, conversations):
    completion = generate_completions(loaded, conversations[:1], GenerationOptions(max_new_tokens=5), IMAGES)[0]
    assert 1 <= completion.num_tokens <= 5
    assert completion.finished == (completion.num_tokens < 5)


def test_sampling_is_reproducible_with_a_seed(loaded, conversations):
    def sample(seed):
        options = GenerationOptions(max_new_tokens=16, do_sample=True, temperature=1.5, top_p=1.0, top_k=0, seed=seed)
        return generate(loaded, conversations[1:2], options, IMAGES)[0]

    assert sample(1) == sample(1)
    assert len({sample(1), sample(2), sample(3)}) > 1


def test_generation_options_validate():
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationOptions(max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature > 0"):
        GenerationOptions(do_sample=True, temperature=0)
    assert GenerationOptions().to_generate_kwargs()["do_sample"] is False


def test_image_tokens_match_the_image_grid(loaded, conversations):
    batch = prepare_inputs(loaded, conversations[:1], IMAGES)
    image_token = loaded.model.config.image_token_id
    grid = batch["image_grid_thw"][0]
    merge = loaded.model.config.vision_config.spatial_merge_size
    assert int((batch["input_ids"] == image_token).sum()) == int(grid.prod()) // merge**2
    assert int(grid.prod()) * CELL * CELL // 4 <= IMAGES.max_pixels  # within the configured bound


def test_bad_image_in_a_conversation_is_a_clear_error(loaded, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        generate(loaded, [build_messages("Find x.", image=broken)], GenerationOptions(max_new_tokens=2), IMAGES)
    with pytest.raises(ImageError, match="empty"):
        list(stream(loaded, build_messages("Find x.", image=broken), GenerationOptions(max_new_tokens=2), IMAGES))


def test_default_image_options_handle_the_bundled_diagram(loaded):
    conversation = build_messages("Find ∠GHC.", image=str(ASSETS / "example_parallel_lines.png"))
    batch = prepare_inputs(loaded, [conversation])
    pixels = int(batch["image_grid_thw"][0].prod()) * 14 * 14
    assert ImageOptions().min_pixels <= pixels <= ImageOptions().max_pixels
    with torch.inference_mode():
        assert generate(loaded, [conversation], GenerationOptions(max_new_tokens=2))[0] is not None


def test_concurrent_callers_get_the_same_answers_as_sequential_ones(loaded, conversations):
    # The app serves several students from one model; Qwen2.5-VL's per-call rope state must not leak between them.
    from concurrent.futures import ThreadPoolExecutor

    options = GenerationOptions(max_new_tokens=12)
    sequential = [generate(loaded, [c], options, IMAGES)[0] for c in conversations[:3]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        streamed = pool.submit(lambda: "".join(stream(loaded, conversations[0], options, IMAGES)))
        others = list(pool.map(lambda c: generate(loaded, [c], options, IMAGES)[0], conversations[1:3]))
    assert [streamed.result(), *others] == sequential


def test_errors_inside_the_streaming_worker_reach_the_reader(loaded, conversations, monkeypatch):
    def broken_generate(**kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(loaded.model, "generate", broken_generate)
    with pytest.raises(RuntimeError, match="simulated"):
        list(stream(loaded, conversations[1], GenerationOptions(max_new_tokens=4), IMAGES))
