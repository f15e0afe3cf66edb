"""Local generation with a loaded Qwen2.5-VL: batched (left padding) and streaming (text increments).

Greedy by default so that answers are reproducible; sampling is an option. Conversations are the chat
messages from model.prompting.build_messages; their images are loaded and sized here (model.images).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import asdict, dataclass
from typing import Iterator

from model.images import ImageOptions, load_image


@dataclass
class GenerationOptions:
    max_new_tokens: int = 512
    do_sample: bool = False  # greedy unless asked
    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    repetition_penalty: float | None = None  # None keeps the checkpoint's generation_config value
    seed: int | None = None  # seeds torch before sampling, for reproducible samples
    # Chains sampled per conversation in the same batch (model.selection picks one); > 1 needs do_sample.
    num_samples: int = 1

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.num_samples < 1 or (self.num_samples > 1 and not self.do_sample):
            raise ValueError(f"num_samples must be >= 1, and > 1 only with do_sample=True; got {asdict(self)}")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1 and self.top_k >= 0):
            raise ValueError(
                f"sampling needs temperature > 0, 0 < top_p <= 1, top_k >= 0; got {asdict(self)}"
            )

    def to_generate_kwargs(self) -> dict:
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:
            # Neutralise sampling fields a checkpoint's generation_config may carry (Qwen's ships some).
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if self.num_samples > 1:
            kwargs["num_return_sequences"] = self.num_samples
        return kwargs


@dataclass
class Completion:
    text: str
    num_tokens: int  # generated tokens, up to and including the stop token
    finished: bool  # True when a stop token ended it, False when max_new_tokens cut it


def conversation_images(conversation: list[dict]) -> list:
    """Image sources in the order the chat template emits their placeholders."""
    found = []
    for message in conversation:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image" or "image" in part:
                    found.append(part.get("image"))
                elif "image_url" in part:
                    url = part["image_url"]
                    found.append(url.get("url") if isinstance(url, dict) else url)
    return found


def prepare_inputs(loaded, conversations: list[list[dict]], image_options: ImageOptions | None = None):
    """Render conversations with the processor's chat template and tokenize them, left-padded, on the model's
    device. Images go through model.images (safe open, RGB on white, qwen-vl-utils sizing)."""
    options = image_options or getattr(loaded, "image_options", None) or ImageOptions()
    processor = loaded.processor
    texts, images = [], []
    for conversation in conversations:
        texts.append(processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True))
        images.extend(load_image(source, options) for source in conversation_images(conversation))
    kwargs = {}
    if images:
        # The images already satisfy these bounds; passing them keeps the processor from resizing them again
        # to its own saved defaults.
        kwargs["images"] = images
        kwargs["images_kwargs"] = {"size": {"shortest_edge": options.min_pixels, "longest_edge": options.max_pixels}}
    batch = processor(text=texts, padding=True, padding_side="left", return_tensors="pt", **kwargs)
    return batch.to(loaded.device)


def _exclusive(loaded):
    lock = getattr(loaded, "lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def _stop_token_ids(loaded) -> set[int]:
    config_ids = loaded.model.generation_config.eos_token_id
    ids = set(config_ids if isinstance(config_ids, (list, tuple)) else [config_ids] if config_ids is not None else [])
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(loaded.tokenizer.eos_token_id)
    return ids


def generate_completions(
    loaded,
    conversations: list[list[dict]],
    options: GenerationOptions | None = None,
    image_options: ImageOptions | None = None,
    batch_size: int = 8,
    scheduler: str = "continuous",
) -> list[Completion]:
    """Generate for many conversations with `batch_size` in the batch at a time. With
    `options.num_samples` = N the result holds N completions per conversation, conversation by conversation.

    scheduler "continuous" (greedy decoding; model.continuous): a conversation whose chain ends leaves the
    batch and the next one takes its slot. "static", and every case continuous batching does not cover
    (sampling, extra logits processors): left-padded batches of `batch_size` through `model.generate`, each
    decoding until its longest chain ends."""
    import torch

    from model import continuous

    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
    options = options or GenerationOptions()
    stop_ids = _stop_token_ids(loaded)
    if scheduler == "continuous" and continuous.supports(loaded.model, options):
        decoder = continuous.ContinuousDecoder(
            loaded.model, lambda chunk: prepare_inputs(loaded, chunk, image_options), stop_ids,
            max_new_tokens=options.max_new_tokens, repetition_penalty=_repetition_penalty(loaded, options),
            slots=batch_size, exclusive=lambda: _exclusive(loaded))
        return [Completion(text=_decode(loaded, finished.tokens), num_tokens=len(finished.tokens),
                           finished=finished.stopped) for finished in decoder.run(list(conversations))]
    pad_id = loaded.tokenizer.pad_token_id
    results: list[Completion] = []
    for start in range(0, len(conversations), max(1, batch_size)):
        chunk = conversations[start : start + max(1, batch_size)]
        inputs = prepare_inputs(loaded, chunk, image_options)
        with _exclusive(loaded), torch.inference_mode():
            if options.seed is not None:
                torch.manual_seed(options.seed)
            output = loaded.model.generate(**inputs, **options.to_generate_kwargs(), pad_token_id=pad_id)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        for row in new_tokens:
            kept, finished = [], False
            for token in row:
                kept.append(token)
                if token in stop_ids:
                    finished = True
                    break
            results.append(Completion(text=_decode(loaded, kept), num_tokens=len(kept), finished=finished))
    return results


SCHEDULERS = ("continuous", "static")


def _decode(loaded, tokens: list[int]) -> str:
    return loaded.tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _repetition_penalty(loaded, options: GenerationOptions) -> float:
    """The penalty model.generate would apply: the options' own, else the checkpoint's generation_config."""
    if options.repetition_penalty is not None:
        return float(options.repetition_penalty)
    return float(getattr(loaded.model.generation_config, "repetition_penalty", None) or 1.0)


def generate(loaded, conversations, options=None, image_options=None, batch_size: int = 8,
             scheduler: str = "continuous") -> list[str]:
    """Texts for many conversations (greedy by default). See generate_completions for token counts."""
    return [c.text for c in generate_completions(loaded, conversations, options, image_options, batch_size,
                                                 scheduler)]


def sample(loaded, conversations, options: GenerationOptions, image_options=None, batch_size: int = 8
           ) -> list[list[str]]:
    """`options.num_samples` texts per conversation, sampled in the same batch (num_return_sequences)."""
    n = options.num_samples
    texts = generate(loaded, conversations, options, image_options, batch_size)
    return [texts[i * n:(i + 1) * n] for i in range(len(conversations))]


class _IncrementalText:
    """A transformers streamer that turns generated token ids into text increments on a queue.

    It re-decodes the whole answer each step and releases only text that can no longer change: a trailing
    U+FFFD means a multi-byte character is still half-generated. So the increments always concatenate to
    exactly the non-streaming decode.
    """

    _DONE = object()

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.tokens: list[int] = []
        self.sent = 0
        self.seen_prompt = False
        self.queue: queue.Queue = queue.Queue()

    def _text(self) -> str:
        return self.tokenizer.decode(self.tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def put(self, value):
        ids = value.reshape(-1).tolist()
        if not self.seen_prompt:  # generate() first hands over the prompt
            self.seen_prompt = True
            return
        self.tokens.extend(ids)
        text = self._text()
        stable = len(text.rstrip("\ufffd"))
        if stable > self.sent:
            self.queue.put(text[self.sent : stable])
            self.sent = stable

    def end(self):
        text = self._text()
        if len(text) > self.sent:
            self.queue.put(text[self.sent :])
            self.sent = len(text)
        self.queue.put(self._DONE)


def _stop_when(event: threading.Event):
    import torch
    from transformers import StoppingCriteria

    class StopWhen(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return StopWhen()


def stream(
    loaded,
    conversation: list[dict],
    options: GenerationOptions | None = None,
    image_options: ImageOptions | None = None,
) -> Iterator[str]:
    """Yield text increments of the answer to one conversation as they are generated."""
    import torch
    from transformers import StoppingCriteriaList

    options = options or GenerationOptions()
    inputs = prepare_inputs(loaded, [conversation], image_options)
    streamer = _IncrementalText(loaded.tokenizer)
    failure: list[BaseException] = []
    cancelled = threading.Event()  # set when the consumer stops reading, so the worker stops generating

    def run():
        try:
            with _exclusive(loaded), torch.inference_mode():
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                loaded.model.generate(
                    **inputs,
                    **options.to_generate_kwargs(),
                    pad_token_id=loaded.tokenizer.pad_token_id,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_stop_when(cancelled)]),
                )
        except BaseException as exc:  # re-raised in the consumer's thread below
            failure.append(exc)
            streamer.queue.put(streamer._DONE)

    worker = threading.Thread(target=run, name="qwen-stream", daemon=True)
    worker.start()
    try:
        while True:
            piece = streamer.queue.get()
            if piece is streamer._DONE:
                break
            yield piece
    finally:
        cancelled.set()
        worker.join()
    if failure:
        raise failure[0]
