"""The training config: typed dataclasses, loaded from a YAML file plus dotted `key=value` overrides.

One place turns text into a validated `Config`; an unknown key or a value of the wrong type is an error
that names the key, the file and what is allowed, so a typo never silently trains the wrong thing.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

LANGUAGE_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and says what to do."""


@dataclass
class ModelConfig:
    # Hub id or local directory of a Qwen2.5-VL checkpoint (ignored when `scratch` is set).
    path: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    # Train from scratch: keyword sizes for model.tiny.build_tiny_checkpoint (its tokenizer is trained on the
    # training texts). Used by the embedded CPU demo model.
    scratch: dict[str, Any] | None = None
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    attn_implementation: str = "sdpa"
    # Image resolution bounds for the processor; they decide how many image tokens each picture costs.
    min_pixels: int | None = None
    max_pixels: int | None = None


@dataclass
class DataConfig:
    # A directory holding <split>.jsonl files of ProblemRecords (images relative to it), or one JSONL file.
    dir: str = ""
    train_split: str = "train"
    # Held-out split of the same directory, evaluated at every checkpoint when eval.every_checkpoint is on.
    eval_split: str | None = None
    # The ONLY thing a theorem config and its -plain counterpart differ in.
    target: Literal["theorem", "plain", "answer"] = "theorem"
    # Longest example in tokens (image tokens included). Longer examples are dropped and counted, never cut.
    max_length: int = 2048
    max_examples: int | None = None
    # Show the bank's top-k retrieved theorems in the prompt (0: none). Saved in the checkpoint's serving profile,
    # so the evaluator and the tutor prompt the model the same way.
    prompt_theorems: int = 0
    # What the bank is searched with for those theorems, and how it ranks them (model.profile).
    retrieval_query: Literal["question", "question+choices"] = "question"
    retrieval_mode: Literal["hybrid", "bm25", "dense", "learned"] = "hybrid"
    # Share of curriculum training questions re-worded with random filler words (training.synthetic.augment), so
    # that a model trained from scratch on few phrasings reads the givens rather than the template (0: none).
    filler_augment: float = 0.0


@dataclass
class LoraConfig:
    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    # Module names inside the language model; the vision tower is never adapted.
    targets: list[str] = field(default_factory=lambda: list(LANGUAGE_PROJECTIONS))
    # Write merged full weights at the end instead of adapter + base reference.
    merge: bool = False


@dataclass
class TuningConfig:
    # lora: PEFT adapters; mlp: full-parameter training of the language model's MLP layers only (the paper's
    # ablation); full: the whole language model (embeddings, layers, norm, head).
    mode: Literal["lora", "mlp", "full"] = "lora"
    # Also train the vision tower and its merger (full mode, or a from-scratch model that must learn to see).
    train_vision: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class TrainConfig:
    output_dir: str = "runs/default"
    seed: int = 0
    epochs: float = 1.0
    # When > 0, overrides epochs.
    max_steps: int = -1
    # Per process; the global batch is batch_size * grad_accum * number of processes.
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    lr_scheduler: Literal["cosine", "linear", "constant_with_warmup"] = "cosine"
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = True
    # auto: bf16 on a GPU that supports it, fp32 elsewhere.
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    save_steps: int = 500
    save_total_limit: int | None = 3
    logging_steps: int = 10
    group_by_length: bool = True
    num_workers: int = 0
    # Extra TrainingArguments for what this schema does not name (e.g. {"optim": "adamw_torch_fused"}).
    extra_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    # Generate answers on data.eval_split at every checkpoint and log their accuracy (SFT accuracy can dip
    # before it recovers, so the last checkpoint is not always the best).
    every_checkpoint: bool = False
    max_examples: int = 64
    max_new_tokens: int = 256
    batch_size: int = 8


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read a YAML config (or start from defaults), apply `section.key=value` overrides, validate."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; shipped configs live in configs/*.yaml") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    for item in overrides:
        _apply_override(raw, item)
    config = _build(Config, raw, prefix="", source=source)
    validate(config, source=source)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)


def validate(config: Config, *, source: str = "config") -> None:
    """Checks that types alone cannot express."""
    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {key}: {message}")

    t = config.train
    need(bool(config.data.dir), "data.dir", "is required: a directory of <split>.jsonl record files or one .jsonl file")
    need(config.data.max_length >= 16, "data.max_length", "must be at least 16 tokens")
    need(config.data.prompt_theorems >= 0, "data.prompt_theorems", "must be >= 0")
    need(0 <= config.data.filler_augment <= 1, "data.filler_augment", "must be a share in [0, 1]")
    need(not (config.tuning.train_vision and config.tuning.mode == "lora"), "tuning.train_vision",
         "only with tuning.mode=full or mlp (LoRA adapts the language model only)")
    need(t.batch_size >= 1, "train.batch_size", "must be >= 1")
    need(t.grad_accum >= 1, "train.grad_accum", "must be >= 1")
    need(t.lr > 0, "train.lr", "must be > 0")
    need(0 <= t.warmup_ratio < 1, "train.warmup_ratio", "must be in [0, 1)")
    need(t.max_steps > 0 or t.epochs > 0, "train.epochs", "must be > 0 unless train.max_steps is set")
    need(t.save_steps >= 1, "train.save_steps", "must be >= 1")
    need(t.logging_steps >= 1, "train.logging_steps", "must be >= 1")
    need(config.tuning.lora.r >= 1, "tuning.lora.r", "must be >= 1")
    need(bool(config.tuning.lora.targets), "tuning.lora.targets", "must name at least one module, e.g. [q_proj, v_proj]")
    need(not (config.eval.every_checkpoint and not config.data.eval_split), "eval.every_checkpoint",
         "needs data.eval_split (e.g. data.eval_split=val)")


# ---------------------------------------------------------------------------------------------------------------
# Overrides and typed construction

def _apply_override(raw: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.lr=2e-5")
    dotted, text = item.split("=", 1)
    keys = dotted.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override {item!r}: empty key in {dotted!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    node = raw
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {key!r} holds a value, not a section")
        node = child
    node[keys[-1]] = value


_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def build_typed(cls: type, raw: Any, source: str) -> Any:
    """A dataclass of any typed schema from plain data (YAML), checked field by field as Config is: the one
    typed loader for this project's config files (training.experiment uses it too)."""
    return _build(cls, raw, prefix="", source=source)


def _build(cls: type, raw: Any, *, prefix: str, source: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'top level'}: expected a section (mapping), got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in raw if key not in names]
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix + str(unknown[0])!r}; allowed in "
                          f"{prefix.rstrip('.') or 'the top level'}: {', '.join(names)}")
    values = {}
    for name in names:
        if name in raw:
            values[name] = _convert(raw[name], hints[name], key=prefix + name, source=source)
    return cls(**values)


def _convert(value: Any, hint: Any, *, key: str, source: str) -> Any:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: expected {expected}, got {type(value).__name__} {value!r}")

    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, prefix=key + ".", source=source)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise wrong(_describe(hint))
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key=key, source=source)
            except ConfigError as err:
                errors.append(err)
        raise wrong(_describe(hint))
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{source}: {key}: must be one of {', '.join(map(str, allowed))}; got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise wrong(_describe(hint))
        (item_type,) = typing.get_args(hint)
        return [_convert(v, item_type, key=f"{key}[{i}]", source=source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise wrong("a mapping")
        key_type, value_type = typing.get_args(hint)
        return {_convert(k, key_type, key=key, source=source): _convert(v, value_type, key=f"{key}.{k}", source=source)
                for k, v in value.items()}
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise wrong("true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong("an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads "2e-5" (no dot) as a string; accept numeric text so learning rates read naturally.
        if isinstance(value, str) and _FLOAT.match(value.strip()):
            return float(value)
        raise wrong("a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise wrong("a string")
    raise ConfigError(f"{source}: {key}: unsupported type {hint!r} in the schema")  # a bug in this file


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    if origin is dict:
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(hint, getattr(hint, "__name__", str(hint)))
