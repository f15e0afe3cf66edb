"""Load Qwen2.5-VL for inference: a hub id or local checkpoint, a PEFT LoRA adapter on its base, or a merged
checkpoint; plus the device, dtype and attention-kernel choice. The tiny checkpoints from model.tiny and the
real 7B go through exactly this code.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.profile import ServingProfile, load_profile

HOW_TO_GET_WEIGHTS = (
    "To get weights: on a machine with network run `hf download Qwen/Qwen2.5-VL-7B-Instruct --local-dir DIR` "
    "and pass --model DIR; or build a tiny random checkpoint for tests with `python -m model.tiny DIR`."
)

_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded. The message says what was tried and what to do next."""


class DeviceError(RuntimeError):
    """The requested device or dtype is not available on this machine."""


@dataclass
class LoadedModel:
    """A model ready for generation, with the processor that belongs to it and how it was obtained."""

    model: Any
    processor: Any
    device: str
    dtype: Any  # torch.dtype
    attn_implementation: str
    base: str  # the base checkpoint (hub id or directory)
    adapter: str | None = None  # PEFT adapter directory applied on top of `base`, if any
    load_seconds: float = 0.0
    # What the checkpoint was trained with (its serving_profile.json, or the documented default): prompt,
    # retrieval, point letters, image bounds and decoding. Read once, here.
    profile: ServingProfile | None = None
    # Qwen2.5-VL keeps per-call state on the module (rope_deltas between prefill and decode steps), so two
    # generate() calls must not interleave on one model: model.generation holds this lock around each call.
    lock: Any = field(default_factory=threading.Lock, repr=False)

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def image_options(self):
        """The image bounds to serve with: those the checkpoint was trained with."""
        return self.profile.image_options() if self.profile is not None else None

    def describe(self) -> str:
        adapter = f" + adapter {self.adapter}" if self.adapter else ""
        return f"{self.base}{adapter} on {self.device} ({str(self.dtype).removeprefix('torch.')}, {self.attn_implementation})"


# ---------------------------------------------------------------------------------------------- device and dtype


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when a GPU is visible, else "cpu". Explicit devices are checked, not silently replaced."""
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {device!r} was requested but no CUDA GPU is visible to torch "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). "
                "Use --device cpu (or auto), or install a CUDA build of torch on a GPU machine."
            )
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {device!r} was requested but only {torch.cuda.device_count()} GPU(s) are visible "
                "(check CUDA_VISIBLE_DEVICES)"
            )
        return device
    if device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("device 'mps' was requested but Apple MPS is not available; use --device cpu")
        return device
    if device == "cpu":
        return device
    raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")


def resolve_dtype(dtype: str = "auto", device: str = "cpu"):
    """"auto" -> bfloat16 on CUDA (float16 on GPUs without bf16), float32 elsewhere. Explicit choices are kept:
    bfloat16 on CPU is slow but correct, and tests use it to exercise the mixed-precision path without a GPU."""
    import torch

    if not isinstance(dtype, str):
        return dtype
    name = dtype.strip().lower()
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in _DTYPES:
        raise DeviceError(f"unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32")
    return getattr(torch, _DTYPES[name])


def resolve_attention(attn_implementation: str = "auto", device: str = "cpu", dtype=None) -> str:
    """flash_attention_2 only where it can run (CUDA, half precision, package importable); sdpa otherwise."""
    import torch

    if attn_implementation and attn_implementation != "auto":
        return attn_implementation
    if (
        device.startswith("cuda")
        and dtype in (torch.bfloat16, torch.float16)
        and importlib.util.find_spec("flash_attn") is not None
    ):
        return "flash_attention_2"
    return "sdpa"


# ---------------------------------------------------------------------------------------------- where the weights are


@dataclass
class Source:
    """What a model argument turned out to be."""

    kind: str  # "model_dir", "adapter_dir" or "hub"
    location: str


def classify(spec: str | os.PathLike) -> Source:
    """Decide whether `spec` is a local checkpoint, a local PEFT adapter, or a hub id, without loading anything."""
    text = str(spec).strip()
    if not text:
        raise ModelLoadError("no model given (empty model name). " + HOW_TO_GET_WEIGHTS)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f"model path {path} is a file, not a checkpoint directory; pass the directory that holds "
                "config.json (a model) or adapter_config.json (a PEFT adapter). " + HOW_TO_GET_WEIGHTS
            )
        if (path / "config.json").is_file():
            return Source("model_dir", str(path))
        if (path / "adapter_config.json").is_file():
            return Source("adapter_dir", str(path))
        found = sorted(p.name for p in path.iterdir())[:12]
        raise ModelLoadError(
            f"{path} is a directory but neither a model (no config.json) nor a PEFT adapter (no adapter_config.json); "
            f"it contains {found or 'nothing'}. " + HOW_TO_GET_WEIGHTS
        )
    if _looks_like_hub_id(text):
        return Source("hub", text)
    raise ModelLoadError(f"model path {path} does not exist (tried it as a local directory). " + HOW_TO_GET_WEIGHTS)


def _looks_like_hub_id(text: str) -> bool:
    # "org/name" or "name"; anything with a leading ./ ../ / ~ or more than one slash is meant as a path.
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1:
        return False
    return all(part and all(c.isalnum() or c in "-_." for c in part) for part in text.split("/"))


def adapter_base(adapter_dir: str | os.PathLike) -> str:
    """The base model recorded in a PEFT adapter's adapter_config.json."""
    config_path = Path(adapter_dir) / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {config_path}: {exc}") from exc
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(
            f"{config_path} has no base_model_name_or_path; pass the base explicitly "
            "(load_model(BASE, adapter=ADAPTER), or --model BASE --adapter ADAPTER)"
        )
    return str(base)


def profile_home(model: str | os.PathLike | None, adapter: str | os.PathLike | None = None) -> str | None:
    """The directory whose serving_profile.json describes this model: the adapter's (train.py writes it beside
    the adapter), else the model directory's; None for a hub id."""
    for candidate in (adapter, model):
        if candidate is None:
            continue
        try:
            source = classify(candidate)
        except ModelLoadError:
            continue
        if source.kind != "hub":
            return source.location
    return None


def checkpoint_profile(model: str | os.PathLike | None, adapter: str | os.PathLike | None = None) -> ServingProfile:
    """The serving profile of a checkpoint without loading its weights (load_model attaches the same one)."""
    return load_profile(profile_home(model, adapter))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _has_processor_files(directory: str) -> bool:
    names = ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json")
    return any((Path(directory) / name).is_file() for name in names)


# ---------------------------------------------------------------------------------------------- loading


def load_model(
    model: str | os.PathLike | None = None,
    adapter: str | os.PathLike | None = None,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str = "auto",
    merge_adapter: bool = False,
    local_files_only: bool | None = None,
) -> LoadedModel:
    """Load a Qwen2.5-VL model and its processor for generation.

    - `model` may be a hub id, a checkpoint directory (base or merged), or a PEFT adapter directory (its base comes
      from adapter_config.json).
    - `adapter` applies a PEFT LoRA adapter on top of `model`; with `model=None` the adapter's recorded base is used,
      so `model` doubles as the override for a base that moved.
    - `merge_adapter=True` folds the adapter into the weights (faster generation, no PEFT wrapper).
    - `local_files_only` defaults to HF_HUB_OFFLINE; hub ids then resolve only from the local cache.
    """
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    started = time.perf_counter()
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    attention = resolve_attention(attn_implementation, device, torch_dtype)
    if local_files_only is None:
        local_files_only = _offline()

    if model is None and adapter is None:
        raise ModelLoadError("load_model needs a model (hub id or directory) or an adapter directory. " + HOW_TO_GET_WEIGHTS)
    adapter_dir = None
    if adapter is not None:
        adapter_source = classify(adapter)
        if adapter_source.kind != "adapter_dir":
            raise ModelLoadError(
                f"adapter {adapter} is not a PEFT adapter directory (expected adapter_config.json there)"
            )
        adapter_dir = adapter_source.location
    if model is None:
        base_source = classify(adapter_base(adapter_dir))
    else:
        base_source = classify(model)
        if base_source.kind == "adapter_dir":
            if adapter_dir is not None:
                raise ModelLoadError(
                    f"both {model} and {adapter} are adapters; pass one adapter and (optionally) its base model"
                )
            adapter_dir = base_source.location
            base_source = classify(adapter_base(adapter_dir))
    if base_source.kind == "adapter_dir":
        raise ModelLoadError(f"the base of adapter {adapter_dir} is itself an adapter ({base_source.location})")

    tried = f"{'hub id' if base_source.kind == 'hub' else 'local directory'} {base_source.location}"
    model_kwargs = {"dtype": torch_dtype, "attn_implementation": attention, "local_files_only": local_files_only}
    try:
        network = Qwen2_5_VLForConditionalGeneration.from_pretrained(base_source.location, **model_kwargs)
        processor_home = adapter_dir if adapter_dir and _has_processor_files(adapter_dir) else base_source.location
        processor = AutoProcessor.from_pretrained(processor_home, local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        raise _explain_failure(exc, tried, base_source, local_files_only) from exc

    if adapter_dir is not None:
        from peft import PeftModel

        try:
            network = PeftModel.from_pretrained(network, adapter_dir, is_trainable=False)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(
                f"could not apply adapter {adapter_dir} to {tried}: {exc}. Check that the adapter was trained on this "
                "base (override the base with --model BASE)"
            ) from exc
        if merge_adapter:
            network = network.merge_and_unload()

    network.to(device)
    network.eval()
    return LoadedModel(
        model=network,
        processor=processor,
        device=device,
        dtype=torch_dtype,
        attn_implementation=attention,
        base=base_source.location,
        adapter=adapter_dir,
        load_seconds=time.perf_counter() - started,
        profile=load_profile(adapter_dir or (base_source.location if base_source.kind != "hub" else None)),
    )


def _explain_failure(exc: Exception, tried: str, source: Source, local_files_only: bool) -> ModelLoadError:
    if source.kind == "hub":
        why = (
            "hub access is disabled (HF_HUB_OFFLINE / local_files_only) and it is not in the local cache"
            if local_files_only
            else "it could not be downloaded (no network, unknown repo, or gated without a token) and is not cached"
        )
        return ModelLoadError(
            f"could not load {tried}: {why} (and no local directory {source.location!r} exists). "
            f"Underlying error: {_sentence(exc)} " + HOW_TO_GET_WEIGHTS
        )
    return ModelLoadError(
        f"could not load {tried}: {_sentence(exc)} The directory should hold a Qwen2.5-VL checkpoint saved with "
        "save_pretrained (config.json, *.safetensors, processor/tokenizer files). " + HOW_TO_GET_WEIGHTS
    )


def _sentence(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if text.endswith((".", "!", "?")) else text + "."
