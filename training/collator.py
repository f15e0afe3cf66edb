"""From problem records to padded training batches: chat examples, exact label masks, length-grouped order.

Each example is the tutor's own prompt (system prompt, image, question, choices) followed by one assistant turn,
the supervision target. Only the assistant's answer and its end-of-turn marker are learned; everything else is
labelled -100. The span is found by rendering the processor's chat template with and without the assistant turn,
so no token id is ever hard-coded. Image tokens are never cut: an example longer than `max_length` is dropped and
counted instead.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

IGNORE_INDEX = -100


class TemplateError(ValueError):
    """The chat template does not let us find the assistant's span; the message says what it rendered."""


@dataclass
class Example:
    """One training example before tokenization: plain data, cheap to keep for a whole dataset."""

    id: str
    messages: list[dict[str, Any]]  # the prompt turns (system, user with image and question)
    answer: str  # the assistant turn's text: the supervision target
    image: str | None  # absolute path, or None for a text-only problem
    length: int = 0  # tokens including image tokens, exactly as encode() produces them
    input_ids: torch.Tensor | None = field(default=None, repr=False, compare=False)  # cached by tokenize()
    labels: torch.Tensor | None = field(default=None, repr=False, compare=False)


@dataclass
class PrepareStats:
    kept: int = 0
    dropped_too_long: int = 0
    dropped_invalid: int = 0
    longest_kept: int = 0
    longest_target: int = 0  # supervised tokens (answer + end-of-turn marker) of the longest kept example
    dropped_ids: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # first record id seen for each rejection reason

    def summary(self) -> str:
        return (f"{self.kept} examples kept (longest {self.longest_kept} tokens); dropped {self.dropped_too_long} "
                f"longer than max_length and {self.dropped_invalid} without a usable target or prompt")


# ---------------------------------------------------------------------------------------------------------------
# Messages

def record_examples(records: Iterable[Any], kind: str, image_root: str | Path, profile, bank=None,
                    target_fn: Callable[[Any, str], str] | None = None,
                    stats: PrepareStats | None = None) -> Iterator[Example]:
    """ProblemRecords -> Examples whose prompt is model.prompting.problem_messages(..., profile), the tutor's own
    (theorems retrieved from `bank` as the profile says), and whose assistant turn is `target_fn(record, kind)`
    (training.targets by default).

    A record the target builder or the prompt builder rejects (e.g. a theorem target for a record without
    steps) is skipped and counted in `stats`, with its id, rather than stopping a long data pass.
    """
    from model.prompting import problem_messages

    if target_fn is None:
        from training.targets import record_target as target_fn
    image_root = Path(image_root)
    for record in records:
        image = None
        if record.image:
            path = Path(record.image)
            image = str(path if path.is_absolute() else (image_root / path).resolve())
        try:
            answer = target_fn(record, kind)
            if not answer or not answer.strip():
                raise ValueError("empty target")
            # A build with prompt diversity (training.data --instructions) records the instruction to train with.
            messages = problem_messages(record.question, record.choices, image, bank, profile,
                                        instruction=(record.meta or {}).get("instruction"))
        except (ValueError, KeyError) as err:
            if stats is not None:
                stats.dropped_invalid += 1
                stats.dropped_ids.append(record.id)
                stats.reasons.setdefault(f"{type(err).__name__}: {err}"[:120], record.id)
            continue
        yield Example(id=record.id, messages=messages, answer=answer, image=image)


# ---------------------------------------------------------------------------------------------------------------
# Encoding

class ChatEncoder:
    """Turns an Example into input ids, labels and pixel values with the processor's own chat template."""

    def __init__(self, processor, min_pixels: int | None = None, max_pixels: int | None = None):
        from model.images import ImageOptions

        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_token = getattr(processor, "image_token", "<|image_pad|>")
        # The same image pipeline and bounds as serving (model.images), so a diagram costs the same number of
        # image tokens in training and at inference.
        defaults = ImageOptions()
        self.image_options = ImageOptions(min_pixels=min_pixels or defaults.min_pixels,
                                          max_pixels=max_pixels or defaults.max_pixels)
        self.image_processor = processor.image_processor

    def split_turn(self, messages: list[dict[str, Any]], answer: str) -> tuple[str, str, str, str]:
        """(prompt, before, supervised, after): the rendered prompt with the generation cue, then the assistant
        turn cut into text before the answer (masked), the answer plus its end-of-turn marker (learned), and
        trailing whitespace after the marker (masked: generation stops at the marker)."""
        template = self.processor.apply_chat_template
        prompt = template(messages, tokenize=False, add_generation_prompt=True)
        assistant = {"role": "assistant", "content": [{"type": "text", "text": answer}]}
        full = template(messages + [assistant], tokenize=False, add_generation_prompt=False)
        if not full.startswith(prompt):
            raise TemplateError(
                "the chat template does not render the prompt (with add_generation_prompt) as a prefix of the "
                f"conversation with the answer, so the assistant span cannot be found.\nprompt: {prompt[-200:]!r}\n"
                f"full:   {full[-300:]!r}\nUse a Qwen-style template (checkpoint's chat_template.jinja).")
        turn = full[len(prompt):]
        start = turn.find(answer)
        if start < 0:
            raise TemplateError(f"the rendered assistant turn {turn[:200]!r} does not contain the answer text verbatim")
        before, rest = turn[:start], turn[start + len(answer):]
        marker = rest.rstrip()
        return prompt, before, answer + marker, rest[len(marker):]

    def image_tokens(self, width: int, height: int) -> int:
        from qwen_vl_utils import smart_resize

        cell = self.image_processor.patch_size * self.image_processor.merge_size
        h, w = smart_resize(height, width, factor=cell, min_pixels=self.image_options.min_pixels,
                            max_pixels=self.image_options.max_pixels)
        return (h // cell) * (w // cell)

    def tokenize(self, example: Example, image_size: tuple[int, int] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Input ids and labels, with the image placeholder expanded to as many tokens as the image will cost
        (computed from its size alone, exactly as the processor expands it)."""
        prompt, before, supervised, after = self.split_turn(example.messages, example.answer)
        if image_size is not None:
            prompt = prompt.replace(self.image_token, self.image_token * self.image_tokens(*image_size), 1)
        input_ids: list[int] = []
        labels: list[int] = []
        for text, learn in ((prompt, False), (before, False), (supervised, True), (after, False)):
            ids = self._ids(text)
            input_ids += ids
            labels += ids if learn else [IGNORE_INDEX] * len(ids)
        return torch.tensor(input_ids, dtype=torch.int32), torch.tensor(labels, dtype=torch.int32)

    def count_tokens(self, example: Example, image_size: tuple[int, int] | None) -> int:
        """Token count without processing pixels (only the image's size is read), equal to len(encode(...))."""
        return len(self.tokenize(example, image_size)[0])

    def encode(self, example: Example) -> dict[str, torch.Tensor]:
        """Tokens come from the cache filled by measure_and_filter (the chat template and tokenizer run once per
        example, not once per epoch); only the pixels are processed here."""
        if example.input_ids is None:
            size = image_size(example.image) if example.image else None
            example.input_ids, example.labels = self.tokenize(example, size)
        features: dict[str, torch.Tensor] = {"input_ids": example.input_ids.long(), "labels": example.labels.long()}
        image_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        is_image = features["input_ids"] == image_id
        if example.image is not None:
            from model.images import load_image

            image = load_image(example.image, self.image_options)
            size = {"shortest_edge": self.image_options.min_pixels, "longest_edge": self.image_options.max_pixels}
            out = self.image_processor(images=[image], size=size, return_tensors="pt")
            merge = self.image_processor.merge_size
            expected = int(out["image_grid_thw"][0].prod()) // (merge * merge)
            if expected != int(is_image.sum()):
                raise ValueError(f"record {example.id!r}: the image became {expected} tokens but {int(is_image.sum())} "
                                 "were reserved; the processor's resizing differs from qwen_vl_utils.smart_resize")
            features["pixel_values"] = out["pixel_values"]
            features["image_grid_thw"] = out["image_grid_thw"]
        # 1 marks image placeholder tokens; Qwen2.5-VL's 3D rope positions are computed from this.
        features["mm_token_type_ids"] = is_image.long()
        return features

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def image_size(path: str) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"cannot read image {path}: {err}") from None


def measure_and_filter(examples: Iterable[Example], encoder: ChatEncoder, max_length: int,
                       stats: PrepareStats | None = None, progress: bool = False) -> list[Example]:
    """Fill in each example's token length and drop (and count) those longer than max_length."""
    stats = stats if stats is not None else PrepareStats()
    kept = []
    items = list(examples)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="measuring examples", leave=False)
    for example in items:
        try:
            size = image_size(example.image) if example.image else None
        except FileNotFoundError as err:
            raise FileNotFoundError(f"record {example.id!r}: {err}; fix the record's image path or remove it") from None
        example.input_ids, example.labels = encoder.tokenize(example, size)
        example.length = len(example.input_ids)
        if example.length > max_length:
            stats.dropped_too_long += 1
            stats.dropped_ids.append(example.id)
            continue
        kept.append(example)
        stats.longest_kept = max(stats.longest_kept, example.length)
        stats.longest_target = max(stats.longest_target, int((example.labels != IGNORE_INDEX).sum()))
    stats.kept = len(kept)
    return kept


class SFTDataset(torch.utils.data.Dataset):
    """Encodes lazily (pixel values are large), so a DataLoader's workers share the image processing."""

    def __init__(self, examples: Sequence[Example], encoder: ChatEncoder):
        self.examples = list(examples)
        self.encoder = encoder

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.encoder.encode(self.examples[index])

    @property
    def lengths(self) -> list[int]:
        return [e.length for e in self.examples]


def fingerprint(examples: Sequence[Example]) -> dict[str, Any]:
    """A hash of exactly what is trained on: prompts, targets and image bytes, in order."""
    digest = hashlib.sha256()
    image_hashes: dict[str, str] = {}
    for example in examples:
        image_hash = ""
        if example.image:
            if example.image not in image_hashes:
                image_hashes[example.image] = hashlib.sha256(Path(example.image).read_bytes()).hexdigest()
            image_hash = image_hashes[example.image]
        text_parts = [example.id, repr(_strip_images(example.messages)), example.answer, image_hash]
        digest.update("\x1f".join(text_parts).encode("utf-8"))
        digest.update(b"\x1e")
    return {"sha256": digest.hexdigest(), "examples": len(examples), "images": len(image_hashes),
            "tokens": sum(e.length for e in examples)}


def _strip_images(messages: list[dict[str, Any]]) -> list[Any]:
    # Image paths differ between machines; the image bytes are hashed separately.
    stripped = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = [{k: v for k, v in part.items() if k not in ("image", "image_url")} for part in content]
        stripped.append({**message, "content": content})
    return stripped


# ---------------------------------------------------------------------------------------------------------------
# Batching

class SFTCollator:
    """Right-pads encoded examples into one batch; images are concatenated as the model expects."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.full((len(features), longest), self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(features), longest), dtype=torch.long),
            "labels": torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long),
            "mm_token_type_ids": torch.zeros((len(features), longest), dtype=torch.long),
        }
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            batch["input_ids"][row, :n] = f["input_ids"]
            batch["attention_mask"][row, :n] = 1
            batch["labels"][row, :n] = f["labels"]
            batch["mm_token_type_ids"][row, :n] = f["mm_token_type_ids"]
        with_images = [f for f in features if "pixel_values" in f]
        if with_images:
            batch["pixel_values"] = torch.cat([f["pixel_values"] for f in with_images])
            batch["image_grid_thw"] = torch.cat([f["image_grid_thw"] for f in with_images])
        return batch


class LengthGroupedSampler(torch.utils.data.Sampler[int]):
    """Random order in which every run of `batch_size` indices has similar lengths, so batches carry little padding.

    Indices are shuffled, cut into mega-batches of `group` batches, each mega-batch sorted by length and cut into
    batches, and the batches shuffled. The order depends only on (seed, epoch): a resumed run replays it exactly,
    and accelerate's per-process sharding of consecutive batches keeps every process's batches homogeneous.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, group: int = 64):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group = group
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        span = self.batch_size * self.group
        batches = []
        for start in range(0, len(order), span):
            mega = sorted(order[start:start + span], key=lambda i: -self.lengths[i])
            batches += [mega[i:i + self.batch_size] for i in range(0, len(mega), self.batch_size)]
        # A short batch (the tail of the data) goes last: in the middle it would shift every later batch boundary
        # of the DataLoader and mix lengths. The longest full batch goes first so that an out-of-memory error
        # shows in the first step, not hours in.
        tail = [b for b in batches if len(b) < self.batch_size]
        full = [b for b in batches if len(b) == self.batch_size]
        head = [full.pop(max(range(len(full)), key=lambda b: self.lengths[full[b][0]]))] if full else []
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
        for batch in head + shuffled + tail:
            yield from batch


def nonpadding_share(batches: Iterable[dict[str, torch.Tensor]]) -> float:
    """Share of non-padding tokens over all positions of the given batches."""
    real = total = 0
    for batch in batches:
        real += int(batch["attention_mask"].sum())
        total += batch["attention_mask"].numel()
    return real / total if total else 0.0
