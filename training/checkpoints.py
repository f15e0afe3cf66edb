"""Trainer checkpoints that survive a kill: written in a staging folder, sealed with a completion marker written
last, renamed into place; `--resume` takes only sealed ones and restores their weights strictly or fails.

A checkpoint folder is `checkpoints/checkpoint-N` holding what transformers.Trainer writes there (weights or
adapter, optimizer, scheduler, RNG state of every process, trainer state) plus `checkpoint_complete.json`, which
lists every file with its size. A folder without that marker, or whose files do not match it, is never resumed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import torch

MARKER = "checkpoint_complete.json"
STAGING = ".staging"  # under checkpoints/; Trainer's own helpers only look at checkpoint-* folders
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


class ResumeError(RuntimeError):
    """A checkpoint was chosen but its weights cannot be restored exactly; training must not go on without them."""


# ---------------------------------------------------------------------------------------------------------------
# Writing

def save_atomically(trainer, save: Callable[[], None]) -> Path:
    """Run Trainer's own checkpoint save (`save`) into a staging folder, then seal it and rename it into place.

    Every process takes part (each writes its RNG state, DeepSpeed/FSDP shards); only the main process seals,
    renames and rotates, after all of them have finished writing."""
    accelerator = trainer.accelerator
    run_dir = Path(trainer.args.output_dir)
    name = f"checkpoint-{trainer.state.global_step}"
    staging_root = run_dir / STAGING
    staged = staging_root / name
    if accelerator.is_main_process:
        shutil.rmtree(staged, ignore_errors=True)  # the leftover of an earlier, interrupted write of this step
        staging_root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    # Trainer builds the folder as <_get_output_dir()>/checkpoint-N; pointing that at the staging root keeps every
    # file it writes (and its own rotation, which then sees one folder) out of checkpoints/ until sealed.
    trainer._get_output_dir = lambda trial=None: str(staging_root)
    try:
        save()
    finally:
        del trainer._get_output_dir
    accelerator.wait_for_everyone()

    target = run_dir / name
    if accelerator.is_main_process:
        seal(staged, trainer.state.global_step)
        if target.exists():  # an unsealed folder of the same step, left by a kill before the old code's rename
            _remove(target, staging_root)
        os.replace(staged, target)
        _fsync_dir(run_dir)
        rotate(run_dir, trainer.args.save_total_limit)
        try:
            staging_root.rmdir()  # gone when empty, so a leftover there always means an interrupted write
        except OSError:
            pass
    accelerator.wait_for_everyone()
    return target


def seal(folder: Path, step: int) -> None:
    """Flush every file of `folder` to disk, then write the marker listing them (itself written via a temp file)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
        files[path.relative_to(folder).as_posix()] = path.stat().st_size
    for sub in {p.parent for p in folder.rglob("*")} | {folder}:
        _fsync_dir(sub)
    temp = folder / (MARKER + ".tmp")
    with temp.open("w", encoding="utf-8") as out:
        json.dump({"step": step, "files": files}, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, folder / MARKER)
    _fsync_dir(folder)


def rotate(run_dir: Path, limit: int | None) -> None:
    """Keep the `limit` newest sealed checkpoints; unsealed folders older than the newest sealed one are debris."""
    if not limit or limit <= 0:
        return
    sealed = [path for path, problem in _candidates(run_dir) if problem is None]
    if not sealed:
        return
    newest = _step(sealed[0])
    doomed = sealed[limit:] + [path for path, problem in _candidates(run_dir) if problem and _step(path) < newest]
    for path in doomed:
        _remove(path, run_dir / STAGING)


def _remove(path: Path, staging_root: Path) -> None:
    # Renamed out of checkpoints/ first, so that a kill during the deletion never leaves a half-deleted
    # checkpoint-N that still carries its marker.
    staging_root.mkdir(parents=True, exist_ok=True)
    trash = staging_root / f"deleting-{path.name}"
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not sync directories; the rename is still atomic
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------------------
# Choosing what to resume from

def incomplete_reason(folder: Path) -> str | None:
    """Why `folder` must not be resumed from, or None when it is sealed and every listed file is intact."""
    marker = folder / MARKER
    if not marker.is_file():
        return f"no {MARKER} (its write was interrupted, or an older version wrote it)"
    try:
        listed = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable {MARKER} ({err})"
    for name, size in listed.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    return None


def latest_complete(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest sealed checkpoint under `run_dir` and one line for each newer folder skipped (with why)."""
    skipped = []
    staging = run_dir / STAGING
    if staging.is_dir():
        skipped += [f"{p} (a checkpoint write interrupted before it was sealed)" for p in sorted(staging.iterdir())]
    for path, problem in _candidates(run_dir):
        if problem is None:
            return path, skipped
        skipped.append(f"{path} ({problem})")
    return None, skipped


def _candidates(run_dir: Path) -> list[tuple[Path, str | None]]:
    if not run_dir.is_dir():
        return []
    folders = [p for p in run_dir.iterdir() if p.is_dir() and CHECKPOINT_NAME.match(p.name)]
    return [(p, incomplete_reason(p)) for p in sorted(folders, key=_step, reverse=True)]


def _step(path: Path) -> int:
    return int(CHECKPOINT_NAME.match(path.name).group(1))


# ---------------------------------------------------------------------------------------------------------------
# Restoring weights

def restore_full_weights(model, folder: Path) -> bool:
    """Copy a full-parameter checkpoint's weights into `model`, every tensor accounted for; False when `folder`
    holds no full weights (an adapter checkpoint, or a sharded FSDP/DeepSpeed one that Trainer restores).

    save_pretrained writes the checkpoint under the hub's original key names (`model.layers.0...` for what the
    module calls `model.language_model.layers.0...`) and leaves out tied copies; Trainer's own resume loads the
    file with those names into the module non-strictly, so it restored nothing. We map each module tensor to the
    name it was saved under with transformers' own revert step, and refuse any missing, extra or misshaped key."""
    from safetensors.torch import load_file
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        files = [folder / shard for shard in shards]
    elif single.is_file():
        files = [single]
    else:
        return False
    saved: dict[str, torch.Tensor] = {}
    for path in files:
        saved.update(load_file(str(path), device="cpu"))

    # Views that alias the module's own tensors, under the names save_pretrained gives them.
    targets = revert_weight_conversion(model, remove_tied_weights_from_state_dict(model.state_dict(), model))
    missing = sorted(set(targets) - set(saved))
    unexpected = sorted(set(saved) - set(targets))
    misshaped = sorted(k for k in set(targets) & set(saved) if targets[k].shape != saved[k].shape)
    if missing or unexpected or misshaped:
        raise ResumeError(
            f"--resume: {folder} does not match the model being trained: {len(missing)} missing "
            f"{missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}, {len(misshaped)} of another shape "
            f"{misshaped[:5]}. Resume with the config that wrote it, or start a new train.output_dir.")
    with torch.no_grad():
        for key, tensor in targets.items():
            tensor.copy_(saved[key].to(tensor.dtype))
    _check_equal(targets, saved, folder)
    return True


def check_adapter_restored(model, folder: Path) -> None:
    """After Trainer loaded a LoRA checkpoint through PEFT: every saved adapter tensor is now in the model."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    path = folder / "adapter_model.safetensors"
    if not path.is_file():
        return
    saved = load_file(str(path), device="cpu")
    current = get_peft_model_state_dict(model)
    missing = sorted(set(saved) ^ set(current))
    if missing:
        raise ResumeError(f"--resume: the adapter in {folder} does not match the model being trained "
                          f"({len(missing)} keys differ, e.g. {missing[:5]}); resume with the config that wrote it")
    _check_equal(current, saved, folder)


def _check_equal(current: dict[str, torch.Tensor], saved: dict[str, torch.Tensor], folder: Path) -> None:
    differ = [k for k in saved if not torch.equal(current[k].detach().cpu().to(saved[k].dtype), saved[k])]
    if differ:
        raise ResumeError(f"--resume: {len(differ)} tensors of {folder} did not load into the model "
                          f"(e.g. {differ[:3]}); refusing to continue from other weights")


# ---------------------------------------------------------------------------------------------------------------
# A run killed after its last step

def training_was_finished(folder: str | Path, trainer) -> bool:
    """True when `folder` is the checkpoint of the run's last step (a kill came during the final save)."""
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        return False  # their weights are restored inside Trainer.train only
    state = json.loads((Path(folder) / "trainer_state.json").read_text(encoding="utf-8"))
    return bool(state.get("max_steps")) and state["global_step"] >= state["max_steps"] == trainer.args.max_steps


def restore_finished(trainer, folder: str | Path) -> float | None:
    """Load the last checkpoint's weights and state into `trainer` without training; the run's mean loss."""
    from transformers.trainer_callback import TrainerState

    trainer._load_from_checkpoint(str(folder))
    trainer.state = TrainerState.load_from_json(str(Path(folder) / "trainer_state.json"))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return sum(losses) / len(losses) if losses else None
