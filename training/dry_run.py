"""`train.py --dry-run`: everything a training run would check before its first step, without loading weights.

It reads every record of the train and eval splits and builds each prompt and target (as the run would), builds
the serving profile the checkpoint will carry, and instantiates the model from its config on the meta device to
count what the tuning mode trains: a 7B config is validated in seconds on a laptop.
"""
from __future__ import annotations

from typing import Any

from training.collator import PrepareStats
from training.config import Config, ConfigError

# The published architecture of the 7B, for a dry run on a machine that has neither the weights nor network:
# the hub's config.json of Qwen/Qwen2.5-VL-7B-Instruct, sizes only.
PUBLISHED_ARCHITECTURES = {
    "Qwen/Qwen2.5-VL-7B-Instruct": {
        "text_config": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                        "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                        "max_position_embeddings": 128000},
        "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                          "out_hidden_size": 3584, "fullatt_block_indexes": [7, 15, 23, 31], "window_size": 112},
        "tie_word_embeddings": False,
    },
}


def model_config(config: Config):
    """(transformers config, where it came from) without downloading or loading any weights."""
    from transformers import AutoConfig, Qwen2_5_VLConfig

    path = config.model.path
    try:
        return AutoConfig.from_pretrained(path, local_files_only=True), f"{path}/config.json"
    except (OSError, ValueError):
        if path in PUBLISHED_ARCHITECTURES:
            return (Qwen2_5_VLConfig(**PUBLISHED_ARCHITECTURES[path]),
                    f"the published architecture of {path} (its config.json is not on this machine)")
        raise ConfigError(f"model.path {path!r}: no config.json here and no network lookup in a dry run; download "
                          "it (`hf download ...`) or point model.path at a local checkpoint") from None


def dry_run(config: Config) -> dict[str, Any]:
    """Validate data, profile and parameter selection; returns a report (raises on the first problem)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from training.trainer import (apply_tuning, load_examples, prompt_bank, prompt_profile, split_path,
                                  trainable_table)

    report: dict[str, Any] = {"data": {}}
    profile, bank = prompt_profile(config), prompt_bank(config)
    splits = [config.data.train_split] + ([config.data.eval_split] if config.data.eval_split else [])
    for split in splits:
        stats = PrepareStats()
        examples, _ = load_examples(config, split, stats, profile, bank)
        if not examples:
            raise ValueError(f"data split {split!r} ({split_path(config.data.dir, split)}) gives no usable example: "
                             f"{stats.summary()}; first rejections: {stats.reasons}")
        report["data"][split] = {"file": str(split_path(config.data.dir, split)), "examples": len(examples),
                                 "dropped_invalid": stats.dropped_invalid, "rejections": stats.reasons,
                                 "longest_target_chars": max(len(e.answer) for e in examples)}
    report["profile"] = profile.to_dict()

    if config.model.scratch is not None:
        # Its tokenizer (and so its vocabulary) is trained on the data when the run starts.
        report["model"] = {"config": "model.scratch: built from scratch when the run starts", "mode": config.tuning.mode,
                           "trainable": []}
        return report
    model_cfg, source = model_config(config)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(model_cfg)
    table = trainable_table(apply_tuning(model, config))
    report["model"] = {"config": source, "mode": config.tuning.mode, "trainable": table,
                       "trainable_params": sum(r["trainable"] for r in table),
                       "total_params": sum(r["total"] for r in table)}
    return report


def describe(report: dict[str, Any]) -> str:
    from training.trainer import format_table

    lines = []
    for split, info in report["data"].items():
        lines.append(f"data {split}: {info['examples']} examples from {info['file']} "
                     f"({info['dropped_invalid']} rejected{'; ' + str(info['rejections']) if info['rejections'] else ''})")
    p = report["profile"]
    lines.append(f"serving profile: prompt {p['prompt_version']}, {p['prompt_theorems']} theorems "
                 f"({p['retrieval_query']}, {p['retrieval_mode']}); max_new_tokens is set from the longest target "
                 "when the run measures it")
    lines.append(f"model: {report['model']['config']}; tuning.mode={report['model']['mode']}")
    if report["model"]["trainable"]:
        lines.append(format_table(report["model"]["trainable"]))
    lines.append("dry run: OK (no weights loaded, nothing written)")
    return "\n".join(lines)

