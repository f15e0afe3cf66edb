"""The tiny-model factory: a real Qwen2.5-VL checkpoint directory that loads with the real model's code."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from model.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_checkpoint, main, tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny-models", seed=0)


def test_checkpoint_is_a_small_ordinary_save_pretrained_directory(checkpoint):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "processor_config.json" in names or "preprocessor_config.json" in names
    total = sum(p.stat().st_size for p in checkpoint.iterdir())
    assert total < 5_000_000
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert config["vision_config"]["patch_size"] == 14 and config["vision_config"]["spatial_merge_size"] == 2
    text = config["text_config"]
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2


def test_loads_with_the_real_model_classes_and_ids_match_the_tokenizer(checkpoint):
    from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    processor = AutoProcessor.from_pretrained(checkpoint)
    config = AutoConfig.from_pretrained(checkpoint)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(checkpoint)
    assert isinstance(processor, Qwen2_5_VLProcessor)
    tok = processor.tokenizer
    ids = {token: tok.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(SPECIAL_TOKENS)
    assert config.image_token_id == ids["<|image_pad|>"] == processor.image_token_id
    assert config.video_token_id == ids["<|video_pad|>"]
    assert config.vision_start_token_id == ids["<|vision_start|>"]
    assert config.vision_end_token_id == ids["<|vision_end|>"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert ids["<|im_end|>"] in model.generation_config.eos_token_id
    assert model.generation_config.pad_token_id == ids["<|endoftext|>"]
    assert model.get_input_embeddings().weight.shape[0] == config.text_config.vocab_size >= len(tok)
    assert processor.image_processor.patch_size == config.vision_config.patch_size
    assert processor.image_processor.merge_size == config.vision_config.spatial_merge_size


@pytest.mark.parametrize(
    "text",
    [
        "Map: angle1 = ∠EGB = 50°; angle2 = ∠GHD\nExec: angle2 = angle1 => ∠GHD = 50°",
        "AB ∥ CD, √3 ≈ 1.732, π r², 三角形内角和定理 🙂 \t tabs and  double  spaces",
        "\x00\x7f control bytes and é é (NFC)",
    ],
)
def test_byte_level_tokenizer_round_trips_any_text(checkpoint, text):
    import unicodedata

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == unicodedata.normalize("NFC", text)


def test_special_tokens_are_single_tokens_and_learned_merges_exist(checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    for token in SPECIAL_TOKENS:
        assert tok(token, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(token)]
    # The BPE learned the corpus: a frequent word is far fewer tokens than bytes.
    assert len(tok("Theorem: triangle", add_special_tokens=False)["input_ids"]) < 8


def test_point_names_stay_letter_by_letter_after_a_reload(tmp_path):
    from transformers import AutoTokenizer

    # "DHE" and "ABC" are the corpus's most frequent strings, yet never become tokens: a small model must copy a
    # point name from the question letter by letter, so a merged "DHE" token would be a name it has rarely seen.
    corpus = ["In △DHE, ∠DHE = 81°. Theorem: ABC and DHE" for _ in range(200)]
    out = build_tiny_checkpoint(tmp_path / "letters", corpus=corpus, vocab_size=400)
    tok = AutoTokenizer.from_pretrained(out)
    pieces = tok.convert_ids_to_tokens(tok("∠DHE = ABC, Theorem", add_special_tokens=False)["input_ids"])
    assert [p for p in pieces if p.strip("Ġ").isupper() and p.strip("Ġ").isascii()] == list("DHEABC")
    assert "ĠTheorem" in pieces  # ordinary words still merge into one token


def test_chat_template_has_qwen2_5_vl_structure(checkpoint):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(checkpoint)
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "SYS"}]},
        {"role": "user", "content": [{"type": "image", "image": "x.png"}, {"type": "text", "text": "Find x."}]},
        {"role": "assistant", "content": "x = 3"},
        {"role": "user", "content": "Why?"},
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nSYS<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Find x.<|im_end|>\n"
        "<|im_start|>assistant\nx = 3<|im_end|>\n"
        "<|im_start|>user\nWhy?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_system = processor.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert no_system == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    assert processor.chat_template == CHAT_TEMPLATE


def test_seed_fixes_the_weights(tmp_path):
    a = load_file(build_tiny_checkpoint(tmp_path / "a", seed=3) / "model.safetensors")
    b = load_file(build_tiny_checkpoint(tmp_path / "b", seed=3) / "model.safetensors")
    c = load_file(build_tiny_checkpoint(tmp_path / "c", seed=4) / "model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert any(not (a[k] == c[k]).all() for k in a if a[k].numel() > 1)


def test_size_overrides_and_corpus_are_honoured(tmp_path):
    out = build_tiny_checkpoint(tmp_path / "big", corpus=["zebra quagga " * 50], hidden_size=96, num_hidden_layers=3)
    config = json.loads((out / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == 96 and config["text_config"]["num_hidden_layers"] == 3
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    assert any("quagga" in token for token in vocab)  # merges learned from the given corpus
    with pytest.raises(TypeError, match="unknown size field"):
        build_tiny_checkpoint(tmp_path / "bad", hidden_sise=64)
    with pytest.raises(ValueError, match="heads"):
        build_tiny_checkpoint(tmp_path / "bad2", hidden_size=60, num_attention_heads=8)


def test_cached_builder_builds_once(tmp_path):
    first = tiny_checkpoint(tmp_path, seed=1)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = tiny_checkpoint(tmp_path, seed=1)
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == stamp
    assert tiny_checkpoint(tmp_path, seed=2) != first


def test_cli_writes_a_checkpoint(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Theorem: vertical_angles | Vertical angles are equal\n" * 20, encoding="utf-8")
    assert main([str(tmp_path / "cli"), "--seed", "1", "--hidden-size", "32", "--corpus", str(corpus)]) == 0
    assert "wrote tiny Qwen2.5-VL checkpoint" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["text_config"]["hidden_size"] == 32
