"""The serving profile: what a checkpoint was trained with and must be served with, in one file beside its weights.

train.py writes `serving_profile.json` into every checkpoint it produces; model/loading.py reads it once. The
prompt builder (model.prompting.problem_messages), the backends, the evaluator and the app take their prompt,
retrieval, point-letter, image and decoding settings from it, so a model is never asked in a way it never saw.

A checkpoint without the file (the released Qwen2.5-VL weights, a tiny random test model) gets DEFAULT_PROFILE:
the current prompt with the bank's top 3 theorems retrieved by the question, point names as written, the image
bounds of model.images, all 26 choice letters, and greedy decoding of at most 1024 new tokens with no penalty.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.choices import CHOICE_LETTERS
from model.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, ImageOptions

FILE = "serving_profile.json"
RETRIEVAL_QUERIES = ("question", "question+choices")
RETRIEVAL_MODES = ("hybrid", "bm25", "dense", "learned")
# How many tokens of room a profile gives beyond its longest training target: a model that writes one step more
# than any target it saw must not be cut mid-step.
TOKEN_HEADROOM = 1.25
TOKEN_ROUNDING = 64


class ProfileError(ValueError):
    """A serving profile that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ServingProfile:
    """Everything that changes what a checkpoint writes for a problem, apart from its weights."""

    # The prompt text's version (model.prompting.PROMPT_VERSION when the checkpoint was trained).
    prompt_version: str
    # How many retrieved theorems the prompt lists (0: none; the system prompt then says so).
    prompt_theorems: int = 3
    # The retrieval query recipe: the question alone, or the question followed by its choices.
    retrieval_query: str = "question"
    # How the bank ranks theorems for the prompt (theorem_bank's retrieve(mode=...)).
    retrieval_mode: str = "hybrid"
    # The point letters a from-scratch model was trained on (others are renamed into them); None: as written.
    point_names: str | None = None
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    # The letters choices are listed with, in order.
    choice_letters: str = CHOICE_LETTERS
    # Decoding: greedy, with every knob explicit. Qwen's generation_config carries repetition_penalty 1.05,
    # which would otherwise leak into "greedy" answers.
    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    # The longest supervised target in tokens (train.py measures it; max_new_tokens is sized from it).
    longest_target_tokens: int | None = None
    # Who wrote it: "train.py" or "default" (no file found).
    origin: str = "default"

    def __post_init__(self):
        problems = []
        if self.prompt_theorems < 0:
            problems.append(f"prompt_theorems must be >= 0, got {self.prompt_theorems}")
        if self.retrieval_query not in RETRIEVAL_QUERIES:
            problems.append(f"retrieval_query must be one of {RETRIEVAL_QUERIES}, got {self.retrieval_query!r}")
        if self.retrieval_mode not in RETRIEVAL_MODES:
            problems.append(f"retrieval_mode must be one of {RETRIEVAL_MODES}, got {self.retrieval_mode!r}")
        if not (0 < self.min_pixels <= self.max_pixels):
            problems.append(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}")
        if not self.choice_letters or len(set(self.choice_letters)) != len(self.choice_letters) \
                or not set(self.choice_letters) <= set(CHOICE_LETTERS):
            problems.append(f"choice_letters must be distinct capital letters, got {self.choice_letters!r}")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.repetition_penalty <= 0:
            problems.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if problems:
            raise ProfileError("; ".join(problems))

    def generation_options(self):
        """The decoding settings as model.generation options (greedy with the penalty pinned)."""
        from model.generation import GenerationOptions

        sampling = dict(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k) if self.do_sample else {}
        return GenerationOptions(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample,
                                 repetition_penalty=self.repetition_penalty, **sampling)

    def image_options(self) -> ImageOptions:
        return ImageOptions(min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def replace(self, **changes) -> "ServingProfile":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_profile() -> ServingProfile:
    """The profile of a checkpoint train.py did not write (see the module docstring)."""
    from model.prompting import PROMPT_VERSION

    return ServingProfile(prompt_version=PROMPT_VERSION)


def tokens_for(longest_target_tokens: int) -> int:
    """max_new_tokens for a model whose longest training target is `longest_target_tokens` long."""
    wanted = int(longest_target_tokens * TOKEN_HEADROOM) + 1
    return max(TOKEN_ROUNDING, -(-wanted // TOKEN_ROUNDING) * TOKEN_ROUNDING)


def profile_from_dict(data: Any, where: str = "serving profile") -> ServingProfile:
    """A validated profile from plain data; unknown or missing fields are errors naming `where`."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a JSON object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(ServingProfile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    if "prompt_version" not in data:
        raise ProfileError(f"{where}: field 'prompt_version' is missing")
    try:
        return ServingProfile(**data)
    except (TypeError, ProfileError) as err:
        raise ProfileError(f"{where}: {err}") from None


def load_profile(checkpoint_dir: str | os.PathLike | None) -> ServingProfile:
    """The profile saved in `checkpoint_dir`, or default_profile() when there is none (hub id, None, no file)."""
    path = Path(checkpoint_dir) / FILE if checkpoint_dir else None
    if path is None or not path.is_file():
        return default_profile()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ProfileError(f"{path}: cannot read the serving profile ({err}); rewrite it with train.py's output "
                           "or delete it to serve with the default profile") from None
    return profile_from_dict(data, str(path))


def save_profile(checkpoint_dir: str | os.PathLike, profile: ServingProfile) -> Path:
    """Write `serving_profile.json` (atomically: a reader never sees half a file)."""
    path = Path(checkpoint_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(profile.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
