"""Tiny Qwen2.5-VL checkpoints built on the spot: random weights, a freshly trained byte-level BPE
tokenizer with Qwen's special tokens, and a Qwen2.5-VL-shaped chat template.

The directory it writes is an ordinary checkpoint: the same `AutoProcessor` /
`Qwen2_5_VLForConditionalGeneration.from_pretrained` calls that load the real 7B load it. Tests,
the CPU demo and the embedded default model all start from here; nothing downloads weights.

    python -m model.tiny OUT_DIR [--seed 0] [--corpus FILE ...] [--hidden-size 64 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

# Qwen2.5-VL's special tokens, in its order. The ids they get here differ from the real model's;
# every caller reads them from the tokenizer or config, never from a constant.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Same structure as Qwen2.5-VL's template: an implicit default system turn, `<|im_start|>role\n...<|im_end|>\n`
# turns, string or list content, images/videos as vision_start + pad + vision_end, optional "Picture N:"
# labels, and `add_generation_prompt` opening the assistant turn. Written for this project.
CHAT_TEMPLATE = (
    "{% set counts = namespace(image=0, video=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "{% set counts.image = counts.image + 1 %}"
    "{% if add_vision_id %}Picture {{ counts.image }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "{% set counts.video = counts.video + 1 %}"
    "{% if add_vision_id %}Video {{ counts.video }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}"
    "{{ part['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

# Enough geometry and v1-format text that the BPE learns useful merges for the demo; callers that
# train a real tiny model pass their curriculum texts as `corpus` instead.
DEFAULT_CORPUS = (
    "Theorem: parallel_corresponding_angles | Corresponding angles of parallel lines\n"
    "Cond: AB ∥ CD; EF crosses AB at G and CD at H\n"
    "Map: angle1 = ∠EGB = 50°; angle2 = ∠GHD\n"
    "Exec: angle2 = angle1 => ∠GHD = 50°\n"
    "Theorem: linear_pair | Angles forming a straight line\n"
    "Cond: ∠GHD and ∠GHC lie on line CD with common side GH\n"
    "Map: angle1 = ∠GHD = 50°; angle2 = ∠GHC\n"
    "Exec: angle1 + angle2 = 180° => ∠GHC = 130°\n"
    "Answer: 130° (B)\n",
    "Theorem: triangle_angle_sum | Angles of a triangle sum to 180°\n"
    "Cond: ABC is a triangle\n"
    "Map: angle1 = ∠A = 60°; angle2 = ∠B = 70°; angle3 = ∠C\n"
    "Exec: angle1 + angle2 + angle3 = 180° => ∠C = 50°\n"
    "Answer: 50° (A)\n",
    "Theorem: pythagorean | Pythagorean theorem\n"
    "Cond: ∠C = 90° in right triangle ABC\n"
    "Map: leg1 = AC = 3; leg2 = BC = 4; hypotenuse = AB\n"
    "Exec: leg1^2 + leg2^2 = hypotenuse^2 => AB = 5\n"
    "Answer: 5\n",
    "As shown in the figure, AB is the diameter of circle O, point C is on the circle, ∠ABC = 30°. "
    "Find the degree of ∠BAC. Choices: A. 30° B. 45° C. 60° D. 90°\n",
    "In triangle ABC, AB = AC, the vertex angle is 40°, so each base angle is 70°. "
    "The isosceles triangle base angles are equal; the exterior angle equals the sum of the remote interior angles. "
    "Vertical angles are equal. Alternate interior angles of parallel lines are equal. The area of a circle is π r^2 "
    "and its circumference is 2 π r; sin 30° = 1/2, cos 60° = 1/2, tan 45° = 1, √2, √3.\n",
    "You are a geometry tutor. Answer as a chain of theorem applications using the retrieved theorems. "
    "Each step: Theorem, Cond, Map, Exec; finish with Answer. Question: what is the length of segment BC? "
    "0 1 2 3 4 5 6 7 8 9 10 12 15 20 25 30 35 40 45 50 55 60 65 70 75 80 90 100 120 130 135 140 150 160 180 360\n",
)


@dataclass
class TinySize:
    """Shape of a tiny checkpoint. Defaults give ~0.3M parameters and build in well under a second."""

    vocab_size: int = 1024  # target for the BPE trainer; the real vocab can come out smaller on a small corpus
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 4096
    vision_hidden_size: int = 32
    vision_intermediate_size: int = 64
    vision_depth: int = 2
    vision_num_heads: int = 2
    # Vision geometry matches the real model so the processor's patching and token counts are the same code path.
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    window_size: int = 112
    # Weight init std (per mille, so the CLI can take an int): 20 is the usual 0.02. Tests that must tell
    # prompts apart raise it: at 0.02 a random model gives nearly the same answer to every prompt.
    init_std_permille: int = 20

    def mrope_section(self) -> list[int]:
        """Split head_dim/2 rotary frequencies over (temporal, height, width) in Qwen2.5-VL's 2:3:3 proportion."""
        head_dim = self.hidden_size // self.num_attention_heads
        half = head_dim // 2
        temporal = max(1, round(half * 2 / 8))
        height = (half - temporal) // 2
        return [temporal, height, half - temporal - height]


# A capital letter not followed by a small one is a point name's letter (D, H and E in "∠DHE"): each is its own
# pre-token, so BPE never learns merges like "DHE". A small model cannot copy an unseen multi-letter token from
# the question into its steps, but it learns to copy single letters; whole words ("Theorem", "Map") still merge.
POINT_LETTER_REGEX = r"\p{Lu}(?!\p{Ll})"


def pre_tokenizer():
    """Qwen2's pre-tokenizer split and byte alphabet, with every point-name letter isolated first."""
    from tokenizers import Regex, pre_tokenizers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(POINT_LETTER_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def train_tokenizer(corpus, vocab_size: int):
    """A byte-level BPE over `pre_tokenizer()` with Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    tokenizer = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizer()
    tokenizer.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 byte symbols, so any text (Chinese, emoji, control bytes) tokenizes without an unknown token.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(corpus), trainer=trainer)
    return tokenizer


def _qwen_tokenizer(corpus, vocab_size: int):
    from transformers import Qwen2Tokenizer

    trained = json.loads(train_tokenizer(corpus, vocab_size).to_str())
    vocab = trained["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        eos_token="<|im_end|>",  # as in Qwen2.5-VL-Instruct: the chat turn end stops generation
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    # Qwen2Tokenizer installs Qwen's own split; serve with the one the merges were learned under.
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizer()
    return tokenizer


def build_tiny_checkpoint(out_dir, seed: int = 0, corpus=None, **size) -> Path:
    """Write a tiny Qwen2.5-VL checkpoint (model, processor, chat template, generation config) to `out_dir`.

    `size` overrides fields of TinySize (e.g. hidden_size=128, num_hidden_layers=4). The same seed and corpus
    give the same weights and tokenizer.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    unknown = sorted(set(size) - {f.name for f in fields(TinySize)})
    if unknown:
        raise TypeError(
            f"build_tiny_checkpoint: unknown size field(s) {unknown}; known: {[f.name for f in fields(TinySize)]}"
        )
    shape = TinySize(**size)
    if shape.hidden_size % shape.num_attention_heads or (shape.hidden_size // shape.num_attention_heads) % 2:
        raise ValueError(
            f"hidden_size {shape.hidden_size} must split into num_attention_heads {shape.num_attention_heads} "
            "heads of even size (rotary embeddings pair dimensions)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    texts = list(DEFAULT_CORPUS if corpus is None else corpus)
    if not texts:
        raise ValueError("build_tiny_checkpoint: corpus is empty; pass some text or None for the built-in corpus")
    tokenizer = _qwen_tokenizer(texts, shape.vocab_size)
    token_id = tokenizer.convert_tokens_to_ids

    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": shape.hidden_size,
            "intermediate_size": shape.intermediate_size,
            "num_hidden_layers": shape.num_hidden_layers,
            "num_attention_heads": shape.num_attention_heads,
            "num_key_value_heads": shape.num_key_value_heads,
            "max_position_embeddings": shape.max_position_embeddings,
            "max_window_layers": shape.num_hidden_layers,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": shape.mrope_section(),
            },
            "bos_token_id": token_id("<|endoftext|>"),
            "eos_token_id": token_id("<|im_end|>"),
            "pad_token_id": token_id("<|endoftext|>"),
        },
        vision_config={
            "depth": shape.vision_depth,
            "hidden_size": shape.vision_hidden_size,
            "intermediate_size": shape.vision_intermediate_size,
            "num_heads": shape.vision_num_heads,
            "out_hidden_size": shape.hidden_size,
            "patch_size": shape.patch_size,
            "spatial_merge_size": shape.spatial_merge_size,
            "temporal_patch_size": shape.temporal_patch_size,
            "window_size": shape.window_size,
            # The last block attends over the whole image, as the real model's every-8th blocks do.
            "fullatt_block_indexes": [shape.vision_depth - 1],
        },
        image_token_id=token_id("<|image_pad|>"),
        video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"),
        vision_end_token_id=token_id("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    config.initializer_range = shape.init_std_permille / 1000
    config.text_config.initializer_range = config.initializer_range
    config.vision_config.initializer_range = config.initializer_range
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=token_id("<|endoftext|>"),
        eos_token_id=[token_id("<|im_end|>"), token_id("<|endoftext|>")],
        pad_token_id=token_id("<|endoftext|>"),
        do_sample=False,
    )
    model.save_pretrained(out)

    image_processor = Qwen2VLImageProcessor(
        patch_size=shape.patch_size,
        temporal_patch_size=shape.temporal_patch_size,
        merge_size=shape.spatial_merge_size,
    )
    video_processor = Qwen2VLVideoProcessor(
        patch_size=shape.patch_size,
        temporal_patch_size=shape.temporal_patch_size,
        merge_size=shape.spatial_merge_size,
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    (out / "tiny_model.json").write_text(
        json.dumps({"seed": seed, "corpus_texts": len(texts), "size": asdict(shape)}, indent=2) + "\n"
    )
    return out


def tiny_checkpoint(root, seed: int = 0, corpus=None, **size) -> Path:
    """build_tiny_checkpoint, cached under `root` by its arguments: call it from fixtures in any number of test
    modules with the same root (e.g. pytest's tmp_path_factory.getbasetemp()) and it is built once."""
    import hashlib
    import shutil
    import tempfile

    key = json.dumps({"seed": seed, "corpus": None if corpus is None else list(corpus), "size": size}, sort_keys=True)
    target = Path(root) / f"tiny-qwen2.5-vl-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (target / "config.json").is_file():
        return target
    Path(root).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=".building-"))
    build_tiny_checkpoint(scratch, seed=seed, corpus=corpus, **size)
    try:
        scratch.rename(target)  # atomic: a concurrent builder either wins or finds the finished directory
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.tiny", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="directory to write the checkpoint into (created if missing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--corpus", nargs="*", default=None, help="text files to train the tokenizer on (default: built-in corpus)"
    )
    for f in fields(TinySize):
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=None, help=f"default {f.default}")
    args = parser.parse_args(argv)
    corpus = None
    if args.corpus:
        corpus = []
        for name in args.corpus:
            path = Path(name)
            if not path.is_file():
                parser.error(f"--corpus {name}: no such file")
            corpus.append(path.read_text(encoding="utf-8"))
    size = {f.name: getattr(args, f.name) for f in fields(TinySize) if getattr(args, f.name) is not None}
    out = build_tiny_checkpoint(args.out_dir, seed=args.seed, corpus=corpus, **size)
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"wrote tiny Qwen2.5-VL checkpoint to {out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
