"""Chat examples, label masks, padding and length-grouped batching on a tiny Qwen2.5-VL processor."""
from __future__ import annotations

import random
import re

import pytest
import torch
from PIL import Image, ImageDraw

from model.profile import default_profile
from model.prompting import problem_messages
from training.collator import (IGNORE_INDEX, ChatEncoder, Example, LengthGroupedSampler, PrepareStats, SFTCollator,
                               fingerprint, measure_and_filter, nonpadding_share, record_examples)
from training.records import ProblemRecord
from training.trainer import lora_target_pattern

NO_THEOREMS = default_profile().replace(prompt_theorems=0)


def prompt_messages(question, choices, image):
    return problem_messages(question, choices, image, None, NO_THEOREMS)


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def encoder(processor):
    return ChatEncoder(processor, min_pixels=4 * 28 * 28, max_pixels=16 * 28 * 28)


@pytest.fixture(scope="module")
def diagram(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "triangle.png"
    image = Image.new("RGB", (120, 90), "white")
    ImageDraw.Draw(image).polygon([(10, 80), (110, 80), (40, 10)], outline="black")
    image.save(path)
    return str(path)


def test_label_mask_is_exactly_the_answer_and_end_of_turn_on_an_example_with_an_image(processor, encoder, diagram):
    answer = "Theorem: triangle_angle_sum | Angle sum of a triangle\nAnswer: 50° (A)"
    example = Example("tri-1", prompt_messages("In △ABC, ∠A = 60°, ∠B = 70°. Find ∠C.", ["50°", "60°"], diagram),
                      answer, diagram)
    features = encoder.encode(example)
    ids, labels = features["input_ids"].tolist(), features["labels"].tolist()
    tokenizer = processor.tokenizer

    # Hand check: the learned tokens decode to the answer plus the turn's end marker, and nothing else.
    learned = [t for t, label in zip(ids, labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(learned) == answer + "<|im_end|>"
    first = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
    last = max(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
    assert labels[first:last + 1] == ids[first:last + 1]  # one contiguous span, labels == inputs there
    assert tokenizer.decode(ids[:first]).endswith("<|im_start|>assistant\n")  # the prompt ends with the cue
    assert tokenizer.decode(ids[last + 1:]) == "\n"  # the newline after <|im_end|> is not learned
    assert ids[last] == tokenizer.convert_tokens_to_ids("<|im_end|>")

    # Image tokens: as many as the vision grid gives after the 2x2 merge, all masked, marked for 3D positions.
    image_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    positions = [i for i, t in enumerate(ids) if t == image_id]
    grid = features["image_grid_thw"][0]
    assert len(positions) == int(grid.prod()) // 4 == 12  # 120x90 px -> 112x84 -> 4x3 merged cells
    assert all(labels[i] == IGNORE_INDEX for i in positions)
    assert features["mm_token_type_ids"].nonzero().flatten().tolist() == positions
    assert features["pixel_values"].shape[0] == int(grid.prod())

    # The whole sequence equals the processor's own rendering of the full conversation.
    conversation = example.messages + [{"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    full_text = processor.apply_chat_template(conversation, tokenize=False)
    reference = processor(text=[full_text], images=[Image.open(diagram).convert("RGB")],
                          images_kwargs={"size": {"shortest_edge": 4 * 784, "longest_edge": 16 * 784}},
                          add_special_tokens=False)["input_ids"][0]
    assert ids == list(reference)


def test_token_count_from_header_equals_encoded_length(encoder, diagram):
    examples = [Example("a", prompt_messages("Find x.", None, diagram), "Answer: 3", diagram),
                Example("b", prompt_messages("Find y.", ["1", "2", "3"], None), "Answer: 2 (B)", None)]
    measured = measure_and_filter(examples, encoder, max_length=10_000)
    for example in measured:
        assert example.length == len(encoder.encode(example)["input_ids"])


def test_over_long_examples_are_dropped_and_counted_never_cut(encoder, diagram):
    short = Example("short", prompt_messages("Find x.", None, diagram), "Answer: 3", diagram)
    long = Example("long", prompt_messages("Find x.", None, diagram), "Answer: " + "7 " * 400, diagram)
    measure_and_filter([short], encoder, max_length=10_000)
    stats = PrepareStats()
    kept = measure_and_filter([short, long], encoder, max_length=short.length, stats=stats)
    assert [e.id for e in kept] == ["short"]
    assert (stats.kept, stats.dropped_too_long, stats.dropped_ids) == (1, 1, ["long"])
    assert stats.longest_kept == short.length


def test_records_without_a_usable_target_are_skipped_and_counted(tmp_path):
    good = ProblemRecord(id="g", source="t", split="train", question="Find x.", answer="3",
                         steps=[{"theorem": "linear_pair", "cond": "c", "map": "angle1 = ∠A = 30°; angle2 = ∠B",
                                 "exec": "angle1 + angle2 = 180° => ∠B = 150°"}])
    no_steps = ProblemRecord(id="n", source="t", split="train", question="Find y.", answer="4")
    stats = PrepareStats()
    examples = list(record_examples([good, no_steps], "theorem", tmp_path, NO_THEOREMS, stats=stats))
    assert [e.id for e in examples] == ["g"]
    assert stats.dropped_invalid == 1 and stats.dropped_ids == ["n"]
    assert examples[0].answer.startswith("Theorem: linear_pair") and examples[0].answer.endswith("Answer: 3")
    # The same record with the answer-only target is usable.
    assert [e.answer for e in record_examples([no_steps], "answer", tmp_path, NO_THEOREMS)] == ["Answer: 4"]


def test_collator_pads_right_and_concatenates_images(encoder, diagram):
    with_image = encoder.encode(Example("a", prompt_messages("Find x.", None, diagram), "Answer: 3", diagram))
    text_only = encoder.encode(Example("b", prompt_messages("Find the value of y please.", None, None),
                                       "Answer: 12345", None))
    batch = SFTCollator(pad_token_id=0)([with_image, text_only])
    longest = max(len(with_image["input_ids"]), len(text_only["input_ids"]))
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (2, longest)
    for row, features in enumerate([with_image, text_only]):
        n = len(features["input_ids"])
        assert batch["attention_mask"][row, :n].all() and not batch["attention_mask"][row, n:].any()
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert torch.equal(batch["input_ids"][row, :n], features["input_ids"])
    assert torch.equal(batch["pixel_values"], with_image["pixel_values"])
    assert batch["image_grid_thw"].tolist() == with_image["image_grid_thw"].tolist()


def test_length_grouped_batches_carry_little_padding_and_replay_exactly():
    rng = random.Random(0)
    lengths = [rng.randint(80, 900) for _ in range(2000)]
    batch_size = 8
    sampler = LengthGroupedSampler(lengths, batch_size, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths)))  # a permutation: every example once
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def share(groups):
        masks = []
        for group in groups:
            n = torch.tensor([lengths[i] for i in group])
            masks.append({"attention_mask": (torch.arange(int(n.max()))[None, :] < n[:, None]).long()})
        return nonpadding_share(masks)

    assert share(batches) >= 0.95
    shuffled = list(range(len(lengths)))
    random.Random(1).shuffle(shuffled)
    assert share([shuffled[i:i + batch_size] for i in range(0, len(shuffled), batch_size)]) < 0.75
    # The longest batch comes first (an out-of-memory error shows at once), and the order is a pure function of
    # (seed, epoch): a resumed run sees the same batches.
    assert max(lengths[i] for i in batches[0]) == max(lengths)
    assert list(LengthGroupedSampler(lengths, batch_size, seed=3)) == order
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_a_short_tail_batch_goes_last_so_batch_boundaries_stay_aligned():
    # 21 examples in batches of 4: five full batches and a tail of one. accelerate and the DataLoader cut the
    # index stream every 4; a tail in the middle would make later batches straddle two sorted runs.
    lengths = list(range(100, 121))
    for seed in range(20):
        order = list(LengthGroupedSampler(lengths, 4, seed=seed, group=2))
        assert sorted(order) == list(range(21))
        for start in range(0, 20, 4):
            batch = [lengths[i] for i in order[start:start + 4]]
            assert batch == sorted(batch, reverse=True), (seed, start, batch)


def test_lora_targets_only_the_language_model(tiny_model_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tiny_model_dir))
    pattern = re.compile(lora_target_pattern(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    matched = [name for name, _ in model.named_modules() if pattern.fullmatch(name)]
    layers = model.config.text_config.num_hidden_layers
    assert len(matched) == 7 * layers
    assert all("language_model" in name for name in matched)
    assert any("visual" in name and name.endswith("gate_proj") for name, _ in model.named_modules())  # excluded


def test_fingerprint_changes_with_target_and_image_bytes(tmp_path, diagram):
    a = Example("a", prompt_messages("Find x.", None, diagram), "Answer: 3", diagram, length=10)
    b = Example("a", prompt_messages("Find x.", None, diagram), "Answer: 4", diagram, length=10)
    assert fingerprint([a])["sha256"] == fingerprint([a])["sha256"]
    assert fingerprint([a])["sha256"] != fingerprint([b])["sha256"]
    other = tmp_path / "other.png"
    Image.new("RGB", (120, 90), "black").save(other)
    c = Example("a", prompt_messages("Find x.", None, str(other)), "Answer: 3", str(other), length=10)
    assert fingerprint([a])["sha256"] != fingerprint([c])["sha256"]
    assert fingerprint([a, b]) == {"sha256": fingerprint([a, b])["sha256"], "examples": 2, "images": 1, "tokens": 20}
