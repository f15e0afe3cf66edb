"""Theorem-SFT training of Qwen2.5-VL on transformers.Trainer: data, tuning mode, checkpoints, final output.

`run_training(config)` is the whole recipe, top to bottom: read records, build chat examples, load (or build from
scratch) the model, freeze what the mode does not train, train with token-weighted loss and length-grouped
batches, and write a final directory that model/loading.py loads and the app serves. The same code runs one CPU
process, one GPU, or many processes under `accelerate launch` (DDP, FSDP, DeepSpeed).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from model import point_names
from model.profile import ServingProfile, load_profile, save_profile, tokens_for
from training import checkpoints
from training.collator import (ChatEncoder, Example, LengthGroupedSampler, PrepareStats, SFTCollator, SFTDataset,
                               fingerprint, measure_and_filter, record_examples)
from training.config import Config, ConfigError, dump_config
from training.records import ProblemRecord, read_records

# Module groups for the trainable-parameter table, first match wins (LoRA weights live inside attention/MLP).
PARAM_GROUPS = (
    ("lora adapters", re.compile(r"\.lora_(A|B|embedding_A|embedding_B|magnitude_vector)\.")),
    ("vision merger", re.compile(r"\bvisual\.merger\.")),
    ("vision tower", re.compile(r"\bvisual\.")),
    ("embeddings", re.compile(r"\bembed_tokens\.")),
    ("attention", re.compile(r"\.self_attn\.")),
    ("mlp", re.compile(r"\.mlp\.")),
    ("norms", re.compile(r"norm\.")),
    ("lm_head", re.compile(r"\blm_head\.")),
)
LANGUAGE_MLP = re.compile(r"\blanguage_model\.layers\.\d+\.mlp\.")
LANGUAGE_MODEL = re.compile(r"\blanguage_model\.|\blm_head\.")
VISION = re.compile(r"\bvisual\.")


@dataclass
class TrainResult:
    output_dir: str
    steps: int
    train_loss: float | None
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)
    trainable: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Data

def split_path(data_dir: str | Path, split: str) -> Path:
    """`dir/<split>.jsonl`, or the file itself when data.dir names one JSONL file (train split only)."""
    base = Path(data_dir)
    if base.is_file():
        return base
    path = base / f"{split}.jsonl"
    if not path.is_file():
        found = sorted(p.name for p in base.glob("*.jsonl")) if base.is_dir() else []
        where = f"it holds {found}" if found else "it does not exist or holds no .jsonl files"
        raise FileNotFoundError(f"data split {split!r}: {path} not found ({where}); set data.dir / data.*_split, "
                                "or generate the curriculum first (see README, 'Synthetic curriculum')")
    return path


def prompt_profile(config: Config) -> ServingProfile:
    """The prompt part of the serving profile this run trains with (measured fields are filled in at the end).

    Training prompts keep point names as written: a from-scratch model's alphabet IS its training letters."""
    from model.prompting import PROMPT_VERSION

    return ServingProfile(prompt_version=PROMPT_VERSION, prompt_theorems=config.data.prompt_theorems,
                          retrieval_query=config.data.retrieval_query, retrieval_mode=config.data.retrieval_mode,
                          origin="train.py")


def prompt_bank(config: Config):
    """The theorem bank the prompts retrieve from (None when they list no theorems)."""
    if not config.data.prompt_theorems:
        return None
    from theorem_bank import open_bank

    return open_bank()


def load_examples(config: Config, split: str, stats: PrepareStats, profile: ServingProfile | None = None,
                  bank=None) -> tuple[list[Example], list[ProblemRecord]]:
    path = split_path(config.data.dir, split)
    records = list(read_records(path))
    if split == config.data.train_split and config.data.max_examples:
        records = records[: config.data.max_examples]
    if split == config.data.train_split and config.data.filler_augment:
        from training.synthetic.augment import augment_record

        records = [augment_record(r, config.data.filler_augment, config.train.seed) for r in records]
    profile = profile or prompt_profile(config)
    if bank is None and profile.prompt_theorems:
        bank = prompt_bank(config)
    examples = list(record_examples(records, config.data.target, path.parent, profile, bank, stats=stats))
    by_id = {r.id: r for r in records}
    return examples, [by_id[e.id] for e in examples]


def serving_profile(config: Config, encoder: ChatEncoder, stats: PrepareStats, train_examples, base_path) -> ServingProfile:
    """What the final checkpoint is served with: this run's prompt, its image bounds, the point letters a
    from-scratch model saw, and a token budget sized from the longest target it learned to write."""
    letters = None
    if config.model.scratch is not None or load_profile(base_path).point_names is not None:
        # A from-scratch model knows only the point letters of its training problems; serving renames others.
        letters = point_names.trained_alphabet(question_texts(train_examples)) or None
    return prompt_profile(config).replace(
        min_pixels=encoder.image_options.min_pixels, max_pixels=encoder.image_options.max_pixels,
        point_names=letters, longest_target_tokens=stats.longest_target,
        max_new_tokens=tokens_for(stats.longest_target))


def question_texts(examples: Sequence[Example]) -> list[str]:
    """The user turns' text (question and choices) of each example."""
    texts = []
    for example in examples:
        for message in example.messages:
            if message["role"] != "user":
                continue
            content = message["content"]
            texts += [content] if isinstance(content, str) else [p.get("text", "") for p in content]
    return texts


def scratch_corpus(examples: Sequence[Example]) -> list[str]:
    """Texts the from-scratch tokenizer is trained on: every prompt and target string the model will see."""
    texts = []
    for example in examples:
        for message in example.messages:
            content = message["content"]
            parts = [content] if isinstance(content, str) else [p.get("text", "") for p in content]
            texts += [p for p in parts if p]
        texts.append(example.answer)
    return texts


# ---------------------------------------------------------------------------------------------------------------
# Model and tuning mode

def load_model(model_path: str | Path, config: Config):
    from transformers import Qwen2_5_VLForConditionalGeneration

    dtype = config.model.dtype
    if dtype == "auto":
        # Frozen LoRA bases sit in bf16 on a GPU; trained weights stay fp32 masters under bf16 autocast
        # (DeepSpeed / FSDP keep their own fp32 copies either way).
        dtype = "bfloat16" if torch.cuda.is_available() and config.tuning.mode == "lora" else "float32"
    from model.loading import resolve_attention

    # flash_attention_2 where the package is installed and the compute runs in bf16 on a GPU (the vision tower's sdpa
    # path loops over its attention windows in Python); sdpa elsewhere.
    compute = torch.bfloat16 if torch.cuda.is_available() and config.train.precision != "fp32" else getattr(torch, dtype)
    attention = resolve_attention(config.model.attn_implementation, "cuda" if torch.cuda.is_available() else "cpu",
                                  compute)
    # Under FSDP with cpu_ram_efficient_loading, transformers loads the weights on process 0 only (the others build
    # the model on the meta device and receive their shards when FSDP wraps it); DeepSpeed's zero3_init_flag shards
    # while loading. Either way no process stages a full second copy in host RAM.
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(
        str(model_path), dtype=getattr(torch, dtype), attn_implementation=attention)


def prepare_for_training(model, config: Config, num_processes: int):
    """Gradient checkpointing that leaves a frozen vision tower out of the backward, and, when several processes
    train together, a vision-tower pass on every micro-batch (model.modality) so that sharded ranks cannot hang."""
    from model.modality import checkpoint_language_model, run_vision_on_text_batches

    if config.train.gradient_checkpointing:
        checkpoint_language_model(model, train_vision=config.tuning.train_vision)
    if num_processes > 1:
        run_vision_on_text_batches(model)
    return model


def use_fp32_gradient_reduction(fsdp_plugin) -> None:
    """FSDP2 under bf16 mixed precision computes in bf16 but reduce-scatters gradients in fp32: a bf16 sum over
    many ranks loses the small updates of a 1e-5 learning rate. Must run before the model is prepared."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if fsdp_plugin is None or getattr(fsdp_plugin, "fsdp_version", 1) != 2:
        return
    current = fsdp_plugin.mixed_precision_policy
    param_dtype = getattr(current, "param_dtype", None)
    fsdp_plugin.mixed_precision_policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)


def lora_target_pattern(targets: Sequence[str]) -> str:
    """A PEFT target regex matching only the language model's projections, never the vision tower's
    (whose blocks also have gate/up/down projections)."""
    names = "|".join(re.escape(t) for t in targets)
    return rf".*language_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{names})"


def apply_tuning(model, config: Config):
    """Freeze everything, then unfreeze (or add adapters to) exactly what the mode trains."""
    tuning = config.tuning
    if tuning.train_vision and tuning.mode == "lora":
        raise ConfigError("tuning.train_vision: only with tuning.mode=full or mlp (LoRA adapts the language model)")
    for param in model.parameters():
        param.requires_grad_(False)
    if tuning.mode == "lora":
        from peft import LoraConfig, get_peft_model

        lora = tuning.lora
        model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=lora_target_pattern(lora.targets),
                                                 task_type="CAUSAL_LM"))
    else:
        train = LANGUAGE_MLP if tuning.mode == "mlp" else LANGUAGE_MODEL
        for name, param in model.named_parameters():
            if train.search(name):
                param.requires_grad_(True)
    if tuning.train_vision:
        for name, param in model.named_parameters():
            if VISION.search(name):
                param.requires_grad_(True)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"tuning.mode={tuning.mode} left no trainable parameter; check tuning.lora.targets")
    return model


def trainable_table(model) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        group = next((g for g, pattern in PARAM_GROUPS if pattern.search(name)), "other")
        row = rows.setdefault(group, {"group": group, "trainable": 0, "total": 0})
        count = param.ds_numel if hasattr(param, "ds_numel") else param.numel()  # ZeRO-3 shards report 0
        row["total"] += count
        row["trainable"] += count if param.requires_grad else 0
    order = [g for g, _ in PARAM_GROUPS] + ["other"]
    return sorted(rows.values(), key=lambda r: order.index(r["group"]))


def format_table(rows: list[dict[str, Any]]) -> str:
    total = sum(r["total"] for r in rows)
    trainable = sum(r["trainable"] for r in rows)
    lines = [f"{'module group':<16}{'trainable':>15}{'total':>15}{'share':>8}"]
    for r in rows + [{"group": "all", "trainable": trainable, "total": total}]:
        share = 100 * r["trainable"] / r["total"] if r["total"] else 0.0
        lines.append(f"{r['group']:<16}{r['trainable']:>15,}{r['total']:>15,}{share:>7.1f}%")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Trainer

def token_mean_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy averaged over every supervised token of the whole optimizer step (all micro-batches and all
    processes), so gradient accumulation and data parallelism give the same update as one big batch.

    Registered as the Trainer's compute_loss_func so that it counts supervised tokens across micro-batches and
    processes (num_items_in_batch); SFTTrainer.compute_loss computes the same loss on fewer logits."""
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    targets = labels[:, 1:].to(logits.device)
    mask = targets != -100
    picked = logits[:, :-1][mask].float()
    total = torch.nn.functional.cross_entropy(picked, targets[mask], reduction="sum")
    if num_items_in_batch is None:
        return total / mask.sum().clamp(min=1)
    return total / num_items_in_batch


def make_trainer(model, args, train_dataset: SFTDataset, eval_dataset, collator, processor, seed: int, group: bool,
                 callbacks=()):
    from transformers import Trainer

    class SFTTrainer(Trainer):
        loss_is_scaled_for_ga = True  # normalized by the supervised tokens of the whole optimizer step

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # Logits only where a supervised token is predicted (the answers, ~1/4 of a sequence): the vocabulary
            # projection of the prompt is never needed, which saves its compute and, on the 7B with a 152k
            # vocabulary, gigabytes of activation memory.
            labels = inputs.pop("labels")
            targets = labels[:, 1:]
            positions = (targets != -100).any(dim=0).nonzero().flatten()
            outputs = model(**inputs, logits_to_keep=positions if len(positions) else 1)
            kept = targets[:, positions] if len(positions) else targets[:, :0]
            mask = kept != -100
            picked = outputs.logits[mask].float() if len(positions) else outputs.logits[:, :0].reshape(0, outputs.logits.shape[-1]).float()
            total = torch.nn.functional.cross_entropy(picked, kept[mask], reduction="sum")
            loss = total / (num_items_in_batch if num_items_in_batch is not None else mask.sum().clamp(min=1))
            if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
            return (loss, outputs) if return_outputs else loss

        # Our own length-grouped sampler: deterministic per (seed, epoch), so --resume replays the data order.
        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            sampler = LengthGroupedSampler(dataset.lengths, self.args.per_device_train_batch_size, seed=seed,
                                           group=64 if group else 1)
            # A resumed multi-process run skips batches through accelerate's SkipBatchSampler(BatchSamplerShard(
            # ...)), and DataLoaderShard.set_epoch does not reach a sampler that deep: the rest of the resumed
            # epoch replayed epoch 0's order. It does call the dataset's set_epoch, so the dataset forwards it.
            dataset.set_epoch = sampler.set_epoch
            return sampler

        # Checkpoints are staged, sealed and renamed (a kill mid-write leaves nothing --resume would take), and a
        # resume restores every weight or stops: see training/checkpoints.py.
        def _save_checkpoint(self, model, trial):
            checkpoints.save_atomically(self, lambda: super(SFTTrainer, self)._save_checkpoint(model, trial))

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            target = model if model is not None else self.model
            sharded = self.is_fsdp_enabled or self.is_deepspeed_enabled
            if not sharded and checkpoints.restore_full_weights(target, Path(resume_from_checkpoint)):
                return
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            if not sharded and hasattr(target, "peft_config"):
                checkpoints.check_adapter_restored(target, Path(resume_from_checkpoint))

    return SFTTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                      data_collator=collator, processing_class=processor, compute_loss_func=token_mean_loss,
                      callbacks=list(callbacks))


def training_arguments(config: Config, checkpoint_dir: Path, has_eval: bool):
    from transformers import TrainingArguments

    t = config.train
    cuda = torch.cuda.is_available()
    bf16 = t.precision == "bf16" or (t.precision == "auto" and cuda and torch.cuda.is_bf16_supported())
    kwargs = dict(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        learning_rate=t.lr,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        lr_scheduler_type=t.lr_scheduler,
        max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.save_steps if has_eval else None,
        bf16=bf16,
        # train.gradient_checkpointing is applied by prepare_for_training, which keeps a frozen vision tower out of
        # the backward; the Trainer's own switch would hook the tower's patch_embed.
        gradient_checkpointing=False,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=t.num_workers,
        # A trainable vision tower gets no gradient from a text-only batch; DDP must then be told to look for
        # unused parameters or the processes wait on each other forever. Language weights are always used.
        ddp_find_unused_parameters=config.tuning.train_vision,
        use_cpu=not cuda,
        optim="adamw_torch",
        disable_tqdm=False,
    )
    unknown = set(t.extra_args) - set(TrainingArguments.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"train.extra_args: {sorted(unknown)} are not TrainingArguments fields")
    kwargs.update(t.extra_args)
    return TrainingArguments(**kwargs)


def _logged_step(line: str) -> int | None:
    # A kill mid-write leaves a torn last line; it is dropped with the other lines past the checkpoint.
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row.get("step", 0) if isinstance(row, dict) else None


class MetricsLog:
    """Appends every Trainer log line to metrics.jsonl; a resumed run first drops lines past its checkpoint."""

    def __new__(cls, path: Path):
        from transformers import TrainerCallback

        class _MetricsLog(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                if state.is_world_process_zero and path.exists():
                    kept = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                            if _logged_step(line) is not None and _logged_step(line) <= state.global_step]
                    temp = path.with_name(path.name + ".tmp")  # rewritten aside: a kill here keeps the old log
                    temp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
                    os.replace(temp, path)

            def on_log(self, args, state, control, logs=None, **kwargs):
                if state.is_world_process_zero and logs:
                    row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **logs,
                           "time": round(time.time(), 3)}
                    with path.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(row) + "\n")

        return _MetricsLog()


class CheckpointEval:
    """At every save: greedy answers on the held-out split, graded with model.answers, logged as eval metrics."""

    def __new__(cls, examples: list[Example], records: list[ProblemRecord], processor, encoder: ChatEncoder,
                config: Config, profile: ServingProfile):
        from transformers import TrainerCallback

        class _CheckpointEval(TrainerCallback):
            def on_save(self, args, state, control, model=None, **kwargs):
                metrics = evaluate_answers(model, processor, encoder, examples, records, config, profile)
                if metrics is not None and state.is_world_process_zero:
                    state.log_history.append({"step": state.global_step, **metrics})
                    path = Path(config.train.output_dir) / "metrics.jsonl"
                    with path.open("a", encoding="utf-8") as out:
                        out.write(json.dumps({"step": state.global_step, **metrics}) + "\n")
                    print(f"[eval] step {state.global_step}: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))

        return _CheckpointEval()


def evaluate_answers(model, processor, encoder: ChatEncoder, examples, records, config: Config,
                     profile: ServingProfile | None = None) -> dict | None:
    """Answer accuracy of greedy generations on the examples' own prompts (model.prompting.problem_messages),
    decoded as the profile says within eval.max_new_tokens; each process takes its share and the counts are
    summed."""
    import torch.distributed as dist
    from model.answers import extract_answer, grade
    from model.choices import record_letter
    from model.generation import generate
    from model.loading import LoadedModel

    if os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true" or os.environ.get("ACCELERATE_USE_FSDP") == "true":
        return None  # sharded weights cannot generate rank by rank; eval loss still runs
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    chosen = list(zip(examples, records))[: config.eval.max_examples][rank::world]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loaded = LoadedModel(model=model, processor=processor, device=str(device), dtype=next(model.parameters()).dtype,
                         attn_implementation=config.model.attn_implementation, base=config.model.path)
    options = dataclasses.replace((profile or prompt_profile(config)).generation_options(),
                                  max_new_tokens=config.eval.max_new_tokens)
    texts = generate(loaded, [e.messages for e, _ in chosen], options, encoder.image_options,
                     batch_size=config.eval.batch_size) if chosen else []
    if was_training:
        model.train()
    correct = sum(bool(grade(extract_answer(text, r.choices), r.answer, r.choices, record_letter(r)))
                  for text, (_, r) in zip(texts, chosen))
    counts = torch.tensor([correct, len(chosen)], dtype=torch.long, device=device)
    if dist.is_initialized():
        dist.all_reduce(counts)
    correct, total = counts.tolist()
    return {"eval_answer_accuracy": round(correct / total, 4) if total else 0.0, "eval_answer_n": total}


# ---------------------------------------------------------------------------------------------------------------
# The recipe

def run_training(config: Config, *, resume: bool = False, callbacks: Sequence[Any] = ()) -> TrainResult:
    from accelerate import PartialState
    from transformers import AutoProcessor, set_seed

    started = time.time()
    out = Path(config.train.output_dir)
    checkpoint_dir = out / "checkpoints"
    # TrainingArguments first: it sets up the process group (gloo on CPU, NCCL on GPUs) that PartialState reports.
    args = training_arguments(config, checkpoint_dir, bool(config.data.eval_split))
    state = PartialState()
    main = state.is_main_process
    say = print if main else (lambda *a, **k: None)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        _check_output_dir(out, resume)
    state.wait_for_everyone()
    set_seed(config.train.seed)

    stats = PrepareStats()
    profile, bank = prompt_profile(config), prompt_bank(config)
    train_examples, _ = load_examples(config, config.data.train_split, stats, profile, bank)
    if not train_examples:
        raise ValueError(f"no usable training examples in {split_path(config.data.dir, config.data.train_split)}: "
                         f"{stats.summary()}; first rejections: {stats.reasons}")

    model_path: str | Path = config.model.path
    if config.model.scratch is not None:
        model_path = checkpoint_dir / "init"
        if main and not (model_path / "config.json").is_file():
            from model.tiny import build_tiny_checkpoint

            say(f"building a from-scratch model in {model_path} (tokenizer trained on {len(train_examples)} examples)")
            # Built aside and renamed: a kill mid-build must not leave an init/ that a resume would take as whole.
            partial = model_path.with_name(model_path.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            build_tiny_checkpoint(partial, seed=config.train.seed, corpus=scratch_corpus(train_examples),
                                  **config.model.scratch)
            shutil.rmtree(model_path, ignore_errors=True)
            os.replace(partial, model_path)
        state.wait_for_everyone()

    processor = AutoProcessor.from_pretrained(str(model_path))
    encoder = ChatEncoder(processor, config.model.min_pixels, config.model.max_pixels)
    # Saved with the final model so that serving sizes images exactly as training did.
    processor.image_processor.size = {"shortest_edge": encoder.image_options.min_pixels,
                                      "longest_edge": encoder.image_options.max_pixels}
    train_examples = measure_and_filter(train_examples, encoder, config.data.max_length, stats, progress=main)
    say(f"train split {config.data.train_split!r}: {stats.summary()}")
    if not train_examples:
        raise ValueError(f"every example is longer than data.max_length={config.data.max_length}; raise it or "
                         "lower model.max_pixels")

    eval_dataset = eval_examples = eval_records = None
    if config.data.eval_split:
        eval_stats = PrepareStats()
        eval_examples, eval_records = load_examples(config, config.data.eval_split, eval_stats, profile, bank)
        eval_examples = measure_and_filter(eval_examples, encoder, config.data.max_length, eval_stats)
        keep = {e.id for e in eval_examples}
        eval_records = [r for r in eval_records if r.id in keep]
        eval_dataset = SFTDataset(eval_examples[: config.eval.max_examples], encoder)
        say(f"eval split {config.data.eval_split!r}: {eval_stats.summary()}")

    profile = serving_profile(config, encoder, stats, train_examples, model_path)
    say(f"serving profile: {profile.prompt_theorems} theorems in the prompt, point letters "
        f"{profile.point_names or 'as written'}, max_new_tokens {profile.max_new_tokens} (longest target "
        f"{profile.longest_target_tokens} tokens)")

    model = prepare_for_training(apply_tuning(load_model(model_path, config), config), config, state.num_processes)
    table = trainable_table(model)
    say(format_table(table))

    data_info = {"dir": str(Path(config.data.dir).resolve()), "split": config.data.train_split,
                 "target": config.data.target, **fingerprint(train_examples),
                 "dropped_too_long": stats.dropped_too_long, "dropped_invalid": stats.dropped_invalid,
                 "longest_kept": stats.longest_kept}

    all_callbacks = [MetricsLog(out / "metrics.jsonl"), *callbacks]
    if config.eval.every_checkpoint and eval_examples:
        all_callbacks.append(CheckpointEval(eval_examples, eval_records, processor, encoder, config, profile))
    trainer = make_trainer(model, args, SFTDataset(train_examples, encoder), eval_dataset,
                           SFTCollator(processor.tokenizer.pad_token_id), processor, config.train.seed,
                           config.train.group_by_length, all_callbacks)
    use_fp32_gradient_reduction(getattr(trainer.accelerator.state, "fsdp_plugin", None))

    resume_from = None
    if resume:
        resume_from, skipped = checkpoints.latest_complete(checkpoint_dir)
        for line in skipped:
            say(f"--resume: skipping {line}")
        say(f"resuming from {resume_from}" if resume_from else "--resume: no complete checkpoint yet, starting at step 0")
        resume_from = str(resume_from) if resume_from else None
    if resume_from and checkpoints.training_was_finished(resume_from, trainer):
        # Killed during the final save: only that is left. (Trainer.train resumed at max_steps runs one step more.)
        training_loss = checkpoints.restore_finished(trainer, resume_from)
    else:
        training_loss = trainer.train(resume_from_checkpoint=resume_from).training_loss

    save_final(trainer, processor, config, model_path, out, data_info, table, profile)
    result = TrainResult(output_dir=str(out), steps=trainer.state.global_step, train_loss=training_loss,
                         seconds=round(time.time() - started, 1), data=data_info, trainable=table)
    if main:
        (out / "train_summary.json").write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
        say(f"done: {result.steps} steps in {result.seconds:.0f} s; final model in {out}")
    return result


def _check_output_dir(out: Path, resume: bool) -> None:
    # A finished run's directory is never silently overwritten; an unfinished one is only continued with --resume.
    if resume:
        return
    if (out / "train_summary.json").exists() or (out / "checkpoints").is_dir() and any(
            p.name.startswith("checkpoint-") for p in (out / "checkpoints").iterdir()):
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it, or choose another "
                              "train.output_dir (or delete the directory)")


def save_final(trainer, processor, config: Config, base_path, out: Path, data_info: dict, table,
               profile: ServingProfile) -> None:
    """Weights (adapter + base reference, or full/merged weights), processor and chat template, resolved config,
    data fingerprint and serving profile; metrics.jsonl is already there."""
    weights_dtype = torch.bfloat16 if trainer.args.bf16 else None  # what serving runs in: a bf16-trained model
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None)
    if trainer.is_fsdp_enabled and "FULL_STATE_DICT" not in str(plugin.state_dict_type):
        # Checkpoints stay sharded (each process writes its own shard, nothing gathered); the final model alone is
        # gathered once, into process 0's host RAM only, and written as one ordinary checkpoint that serving loads.
        state = trainer.accelerator.get_state_dict(trainer.model)
        if trainer.is_world_process_zero():
            trainer._save(str(out), state_dict=_cast_floats(state, weights_dtype))
        del state
    else:
        trainer.save_model(str(out))  # ZeRO-3 gathers 16-bit weights; PEFT models write the adapter
    trainer.accelerator.wait_for_everyone()  # the last collective: process 0 finishes alone, nobody waits on it
    if not trainer.is_world_process_zero():
        return
    processor.save_pretrained(str(out))
    (out / "training_args.bin").unlink(missing_ok=True)
    (out / "train_config.yaml").write_text(
        f"# resolved config of this run; retrain with: python train.py --config {out / 'train_config.yaml'}\n"
        + dump_config(config), encoding="utf-8")
    (out / "data_fingerprint.json").write_text(json.dumps(data_info, indent=2) + "\n", encoding="utf-8")
    save_profile(out, profile)
    if config.tuning.mode == "lora":
        _record_base(out, base_path)
        if config.tuning.lora.merge:
            merge_adapter(out, weights_dtype)
    if (out / "config.json").is_file():
        store_weights_in(out, weights_dtype)
        write_v4_compatible_files(out)


def _record_base(out: Path, base_path) -> None:
    # A local base is recorded as an absolute path so the adapter loads from any working directory.
    adapter_config = out / "adapter_config.json"
    data = json.loads(adapter_config.read_text(encoding="utf-8"))
    base = Path(str(base_path)).expanduser()
    data["base_model_name_or_path"] = str(base.resolve()) if base.exists() else str(base_path)
    adapter_config.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _cast_floats(state: dict, dtype) -> dict:
    if dtype is None:
        return state
    return {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v for k, v in state.items()}


def store_weights_in(out: Path, dtype=None) -> str:
    """Cast the floating tensors of `out`'s safetensors to `dtype` (when given) and make config.json say what the
    tensors are: a bf16-trained model is served in bf16 (`vllm serve --dtype auto` reads the config; a float32
    config there runs Qwen2.5-VL in fp16, where its activations overflow). Returns the dtype name written."""
    from safetensors.torch import load_file, save_file

    seen, total_bytes = set(), 0
    for path in sorted(out.glob("*.safetensors")):
        tensors = load_file(str(path))
        if dtype is not None and any(t.is_floating_point() and t.dtype != dtype for t in tensors.values()):
            tensors = _cast_floats(tensors, dtype)
            save_file(tensors, str(path.with_suffix(".tmp")), metadata={"format": "pt"})
            os.replace(path.with_suffix(".tmp"), path)
        seen |= {str(t.dtype).removeprefix("torch.") for t in tensors.values() if t.is_floating_point()}
        total_bytes += sum(t.numel() * t.element_size() for t in tensors.values())
    index = out / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        data.setdefault("metadata", {})["total_size"] = total_bytes
        index.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if len(seen) != 1:
        raise ValueError(f"{out}: the saved weights mix floating dtypes {sorted(seen)}; expected one")
    name = seen.pop()
    config_path = out / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = name
    config["torch_dtype"] = name  # the transformers-4 name, read by servers built on transformers 4.x
    for sub in ("text_config", "vision_config"):
        if isinstance(config.get(sub), dict) and "dtype" in config[sub]:
            config[sub]["dtype"] = name
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return name


# Text-model keys a transformers-4 Qwen2.5-VL config.json holds at its top level (v5 nests them in text_config).
_V4_FLAT_TEXT_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                      "num_key_value_heads", "vocab_size", "max_position_embeddings", "rms_norm_eps", "hidden_act",
                      "max_window_layers", "sliding_window", "use_sliding_window", "attention_dropout",
                      "bos_token_id", "eos_token_id")


def write_v4_compatible_files(out: Path) -> None:
    """Also write what readers built on transformers 4.x need (vLLM releases before its transformers-5 support):
    the flat text keys, `rope_theta` and `rope_scaling: {type: mrope, mrope_section}` in config.json (v5 keeps them
    in text_config.rope_parameters; without them M-RoPE falls back to 1-D positions), and preprocessor_config.json
    with min_pixels / max_pixels (v5 writes only processor_config.json). Transformers 5 reads both forms."""
    config_path = out / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    text = config.get("text_config") or {}
    rope = text.get("rope_parameters") or {}
    for key in _V4_FLAT_TEXT_KEYS:
        if key in text:
            config.setdefault(key, text[key])
    if "mrope_section" in rope:
        config["rope_scaling"] = {"type": "mrope", "mrope_section": list(rope["mrope_section"])}
    if "rope_theta" in rope:
        config["rope_theta"] = rope["rope_theta"]
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    processor_path = out / "processor_config.json"
    if processor_path.is_file():
        image = dict(json.loads(processor_path.read_text(encoding="utf-8")).get("image_processor") or {})
        size = image.get("size") or {}
        if size.get("shortest_edge") and size.get("longest_edge"):
            image.update(min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
        image.setdefault("image_processor_type", "Qwen2VLImageProcessor")
        image["processor_class"] = "Qwen2_5_VLProcessor"
        (out / "preprocessor_config.json").write_text(json.dumps(image, indent=2) + "\n", encoding="utf-8")


def merge_adapter(out: Path, dtype=None) -> None:
    """Fold the adapter into its base and write full weights in `out`; the adapter moves to `out/adapter`. The merge
    runs in the serving dtype (bf16 for a bf16 run, else the base's own), never in fp32 by default."""
    from model.loading import adapter_base as adapter_base_path, load_model as load_for_serving

    adapter_dir = out / "adapter"
    adapter_dir.mkdir(exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md"):
        if (out / name).exists():
            shutil.move(str(out / name), str(adapter_dir / name))
    base_config = Path(adapter_base_path(adapter_dir)) / "config.json"
    if dtype is not None:
        dtype = str(dtype).removeprefix("torch.")
    else:
        dtype = "auto"
        if base_config.is_file():  # keep the base's precision (a bf16 7B stays 15 GB, not 30)
            saved = json.loads(base_config.read_text(encoding="utf-8"))
            dtype = str(saved.get("dtype") or saved.get("torch_dtype") or "auto")
    loaded = load_for_serving(None, adapter=adapter_dir, device="cpu", dtype=dtype, merge_adapter=True)
    loaded.model.save_pretrained(str(out))
