"""Which model answers: the embedded demo model by default, a local checkpoint (+ LoRA adapter), or an
OpenAI-compatible server (vLLM). The app talks to a `Tutor`: `.identity` for the About tab and feedback,
`.stream(question, choices, image, theorems)` for the text.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger("app")

REPO = Path(__file__).resolve().parents[1]
# The small model trained on the synthetic curriculum and shipped with the repository (DESIGN.md, "Two tiers").
DEMO_MODEL_DIR = REPO / "demo_model"

DEMO_NOTE = (
    "This is the embedded demo model: a small Qwen2.5-VL-shaped model (2.4M parameters) trained from scratch in "
    "27 minutes on 2 CPU cores on the synthetic geometry curriculum (angles with parallel lines, triangles, "
    "isosceles and right triangles, circles, polygons, simple trigonometry). On the curriculum's test problems "
    "the tutor's answer (its theorem steps, executed by the checker) is right about 87% of the time for "
    "familiar problems and 88% with unseen letters and wordings, but only about 30% when theorems are chained "
    "in new ways and 55% with unusual numbers; it cannot do arithmetic itself, so trust the checker's values, "
    "not its Answer line. Questions unlike the curriculum's get nonsense. For real problems run the "
    "Theorem-SFT Qwen2.5-VL-7B (see below)."
)
RANDOM_MODEL_WARNING = (
    "No trained demo model was found at {path}, so the app is serving a tiny model with RANDOM weights: its output "
    "is noise. It only shows that the app works. Put the trained demo checkpoint at {path} (the lead ships it "
    "there), or start with --model DIR."
)


@dataclass
class ServingConfig:
    model: str | None = None  # None: the embedded demo model
    adapter: str | None = None
    backend: str = "local"  # "local" (transformers) or "openai" (OpenAI-compatible server, e.g. vLLM)
    base_url: str | None = None
    api_key: str | None = None
    device: str = "auto"
    max_new_tokens: int = 768


class Tutor:
    """One model behind the app: `stream_messages(messages) -> Iterator[str]` yields text increments."""

    def __init__(self, stream_messages: Callable[[list[dict]], Iterator[str]], identity: dict,
                 prompt_theorems: int | None = None, point_letters: str | None = None):
        self.stream_messages = stream_messages
        self.identity = identity
        # How many retrieved theorems the model's prompt lists: as many as it saw in training (None: all given).
        self.prompt_theorems = prompt_theorems
        # The point letters a from-scratch model was trained on; the student's others are renamed into them.
        self.point_letters = point_letters

    def stream(self, question: str, choices=None, image=None, theorems=()) -> Iterator[str]:
        from model.point_names import rename_problem
        from model.prompting import build_messages

        shown = list(theorems) if self.prompt_theorems is None else list(theorems)[: self.prompt_theorems]
        renaming, question, choices = rename_problem(question, choices, self.point_letters)
        messages = build_messages(question, choices=choices, image=image, theorems=shown)
        yield from renaming.restore_stream(self.stream_messages(messages))


def trained_prompt_theorems(checkpoint) -> int | None:
    """`data.prompt_theorems` of a checkpoint trained by train.py (its train_config.yaml), else None.

    A model trained with no theorems in its prompt (the demo model) must be served that way too; the theorem
    cards are still shown to the student."""
    import yaml

    path = Path(checkpoint) / "train_config.yaml" if checkpoint else None
    if path is None or not path.is_file():
        return None
    try:
        value = ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("data") or {}).get("prompt_theorems")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return int(value) if isinstance(value, int) else None


def tiny_fallback_dir() -> Path:
    from theorem_bank.store import cache_dir  # the project's one cache location ($THEOREM_TUTOR_CACHE)

    return cache_dir() / "tiny-random-model"


_build_lock = threading.Lock()


def resolve_model(config: ServingConfig) -> tuple[str, dict]:
    """The model path to load and what to tell the student about it (demo / random fallback)."""
    if config.model:
        return config.model, {"demo": False}
    if (DEMO_MODEL_DIR / "config.json").is_file():
        return str(DEMO_MODEL_DIR), {"demo": True, "demo_note": DEMO_NOTE}
    warning = RANDOM_MODEL_WARNING.format(path=DEMO_MODEL_DIR)
    log.warning(warning)
    out = tiny_fallback_dir()
    with _build_lock:
        if not (out / "config.json").is_file():
            from model.tiny import build_tiny_checkpoint

            build_tiny_checkpoint(out, seed=0)
    return str(out), {"demo": True, "demo_note": DEMO_NOTE, "warning": warning, "random": True}


def open_tutor(config: ServingConfig) -> Tutor:
    """Load the model the config names (nothing named: the embedded demo model on CPU)."""
    if config.backend == "openai":
        return _openai_tutor(config)
    if config.backend != "local":
        raise SystemExit(f"unknown --backend {config.backend!r}; use local or openai")
    from model.backends import LocalBackend
    from model.generation import GenerationOptions
    from model.loading import load_model
    from model.point_names import load_alphabet

    path, extra = resolve_model(config)
    # The demo model is small: CPU answers fast and leaves a GPU (if any) to other work.
    device = "cpu" if extra.get("demo") and config.device == "auto" else config.device
    loaded = load_model(path, adapter=config.adapter, device=device)
    backend = LocalBackend(loaded)
    options = GenerationOptions(max_new_tokens=config.max_new_tokens)
    identity = {"model": path, "adapter": config.adapter, "backend": "local (transformers)",
                "device": f"{loaded.device} ({str(loaded.dtype).removeprefix('torch.')})", **extra}
    return Tutor(lambda messages: backend.stream(messages, options), identity,
                 prompt_theorems=trained_prompt_theorems(config.adapter or path),
                 point_letters=load_alphabet(config.adapter or path))


def _openai_tutor(config: ServingConfig) -> Tutor:
    from model.backends import OpenAIBackend
    from model.generation import GenerationOptions

    if not config.base_url:
        raise SystemExit("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1 for vLLM)")
    if not config.model:
        raise SystemExit("--backend openai needs --model: the model name the server serves")
    backend = OpenAIBackend(base_url=config.base_url, model=config.model, api_key=config.api_key)
    options = GenerationOptions(max_new_tokens=config.max_new_tokens)
    identity = {"model": config.model, "adapter": config.adapter, "backend": f"openai-compatible ({config.base_url})",
                "device": "remote", "demo": False}
    return Tutor(lambda messages: backend.stream(messages, options), identity)
