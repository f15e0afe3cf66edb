"""Generators for the evaluation runner: a callable from a batch of prompts to one output text each.

- `local`: a Qwen2.5-VL checkpoint (+ optional LoRA adapter) through model.loading / model.generation;
- `openai`: an OpenAI-compatible server (vLLM, SGLang, ...) through model.backends;
- `vllm`: vLLM's offline engine in this process (GPU; LoRA through LoRARequest), when vllm is installed;
- `replay`: outputs recorded elsewhere (JSONL of {"key" or "id", "output"}), graded as if generated here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

BACKENDS = ("local", "openai", "vllm", "replay")


def _conversations(prompts: Sequence[dict]) -> list[list[dict]]:
    return [prompt["messages"] for prompt in prompts]


class LocalGenerator:
    """Greedy batched generation with a locally loaded model; the runner's batch is the model's batch."""

    def __init__(self, model: str, adapter: str | None = None, *, max_new_tokens: int = 512, device: str = "auto",
                 min_pixels: int | None = None, max_pixels: int | None = None, batch_size: int = 8):
        from model.generation import GenerationOptions
        from model.images import ImageOptions
        from model.loading import load_model

        self.loaded = load_model(model, adapter=adapter, device=device)
        self.options = GenerationOptions(max_new_tokens=max_new_tokens, do_sample=False)
        defaults = self.loaded.image_options or ImageOptions()  # the bounds the checkpoint was trained with
        self.image_options = ImageOptions(min_pixels=min_pixels or defaults.min_pixels,
                                          max_pixels=max_pixels or defaults.max_pixels)
        self.batch_size = batch_size

    def describe(self) -> dict[str, Any]:
        return {"loaded": self.loaded.describe(), "min_pixels": self.image_options.min_pixels,
                "max_pixels": self.image_options.max_pixels}

    def __call__(self, prompts: Sequence[dict]) -> list[str]:
        from model.generation import generate

        return generate(self.loaded, _conversations(prompts), self.options, self.image_options,
                        batch_size=self.batch_size)


class OpenAIGenerator:
    """An OpenAI-compatible chat endpoint (model.backends owns the protocol and image encoding); the batch
    is sent as concurrent requests, which the server batches itself."""

    def __init__(self, model: str, base_url: str | None, *, max_new_tokens: int = 512, min_pixels: int | None = None,
                 max_pixels: int | None = None, concurrency: int = 8):
        from model.backends import OpenAIBackend
        from model.generation import GenerationOptions
        from model.images import ImageOptions

        defaults = ImageOptions()
        url = base_url or os.environ.get("OPENAI_BASE_URL", "http://localhost:8000/v1")
        self.backend = OpenAIBackend(url, model, image_options=ImageOptions(
            min_pixels=min_pixels or defaults.min_pixels, max_pixels=max_pixels or defaults.max_pixels),
            max_concurrency=concurrency)
        self.options = GenerationOptions(max_new_tokens=max_new_tokens, do_sample=False)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend.name}

    def __call__(self, prompts: Sequence[dict]) -> list[str]:
        return self.backend.generate(_conversations(prompts), self.options)


class VLLMGenerator:
    """vLLM's offline engine: the throughput path on GPUs. Images are passed as PIL images."""

    def __init__(self, model: str, adapter: str | None = None, *, max_new_tokens: int = 512):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as err:
            raise SystemExit(f"--backend vllm needs the vllm package ({err}); install it on a GPU machine "
                             f"or use --backend local / openai") from None
        self.llm = LLM(model=model, enable_lora=adapter is not None, limit_mm_per_prompt={"image": 1})
        self.params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, adapter)

    def describe(self) -> dict[str, Any]:
        return {"backend": "vllm"}

    def __call__(self, prompts: Sequence[dict]) -> list[str]:
        outputs = self.llm.chat([_vllm_messages(p["messages"]) for p in prompts], self.params, lora_request=self.lora,
                                use_tqdm=False)
        return [o.outputs[0].text for o in outputs]


def _vllm_messages(messages: list[dict]) -> list[dict]:
    """Our content-list messages with image paths turned into data URLs (what vLLM's chat API accepts)."""
    from model.images import image_to_data_url, load_image

    converted = []
    for message in messages:
        parts = []
        for part in message["content"]:
            if part.get("type") == "image":
                parts.append({"type": "image_url", "image_url": {"url": image_to_data_url(load_image(part["image"]))}})
            else:
                parts.append(part)
        converted.append({"role": message["role"], "content": parts})
    return converted


class ReplayGenerator:
    """Outputs made elsewhere: grade them with this evaluator. A missing key is an error, not an empty answer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.outputs: dict[str, str] = {}
        with self.path.open(encoding="utf-8") as lines:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.outputs[str(row.get("key") or row["id"])] = str(row["output"])
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise SystemExit(f"{self.path}:{line_no}: expected {{\"id\" or \"key\", \"output\"}} ({err})") from None

    def describe(self) -> dict[str, Any]:
        return {"backend": "replay", "outputs": str(self.path)}

    def __call__(self, prompts: Sequence[dict]) -> list[str]:
        texts = []
        for prompt in prompts:
            key = prompt["key"]
            if key not in self.outputs:
                raise SystemExit(f"{self.path} has no output for {key!r}; every evaluated problem needs one")
            texts.append(self.outputs[key])
        return texts


def open_generator(settings, *, outputs: str | None = None, device: str = "auto"):
    """The generator for `settings.backend`."""
    if settings.backend == "local":
        return LocalGenerator(settings.model, settings.adapter, max_new_tokens=settings.max_new_tokens, device=device,
                              min_pixels=settings.min_pixels, max_pixels=settings.max_pixels,
                              batch_size=settings.batch_size)
    if settings.backend == "openai":
        return OpenAIGenerator(settings.model, settings.base_url, max_new_tokens=settings.max_new_tokens,
                               min_pixels=settings.min_pixels, max_pixels=settings.max_pixels,
                               concurrency=max(1, settings.batch_size))
    if settings.backend == "vllm":
        return VLLMGenerator(settings.model, settings.adapter, max_new_tokens=settings.max_new_tokens)
    if settings.backend == "replay":
        if not outputs:
            raise SystemExit("--backend replay needs --outputs FILE.jsonl ({\"id\", \"output\"} per line)")
        return ReplayGenerator(outputs)
    raise SystemExit(f"unknown backend {settings.backend!r}; choose from {', '.join(BACKENDS)}")
