"""Theorem-SFT training of Qwen2.5-VL: the maintainers' entry point.

    python train.py --config configs/NAME.yaml [section.key=value ...] [--resume]
    accelerate launch --config_file configs/accelerate/NAME.yaml train.py --config configs/NAME.yaml

The recipe lives in training/trainer.py, the config schema in training/config.py.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def cpu_processes_requested() -> int:
    """How many processes `accelerate launch --cpu --num_processes N` asked for, when it started only this one.

    accelerate 1.15 spawns CPU worker processes only through MPI (mpirun); without it, `--cpu --num_processes 2`
    runs a single process that has MASTER_ADDR set but no RANK/WORLD_SIZE. We read N from the launcher's command
    line (Linux /proc) so the documented command really trains data-parallel on CPU cores.
    """
    env = os.environ
    if env.get("ACCELERATE_USE_CPU", "").lower() not in ("true", "1") or "MASTER_ADDR" not in env:
        return 1
    if any(key in env for key in ("WORLD_SIZE", "RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")):
        return 1
    try:
        launcher = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return 1
    for i, arg in enumerate(launcher):
        for flag in ("--num_processes", "--num-processes"):
            if arg == flag and i + 1 < len(launcher) and launcher[i + 1].isdigit():
                return int(launcher[i + 1])
            if arg.startswith(flag + "=") and arg.split("=", 1)[1].isdigit():
                return int(arg.split("=", 1)[1])
    return 1


def main(argv=None) -> int:
    processes = cpu_processes_requested()
    if processes > 1 and argv is None:
        # Re-run this script under torch's launcher with that many processes (gloo backend on CPU).
        port = os.environ.get("MASTER_PORT", "29500")
        os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                                  "--master_port", port, *sys.argv])

    parser = argparse.ArgumentParser(prog="python train.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/qwen2.5-vl-7b-theorem-lora.yaml")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override config values, e.g. train.lr=2e-5 data.target=plain")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint in train.output_dir (optimizer, schedule, RNG, data)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the data (every record's prompt and target), the serving profile and the "
                             "parameter selection on a weightless model, then exit; loads no weights")
    args = parser.parse_args(argv)

    from training.config import ConfigError, dump_config, load_config

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as err:
        parser.exit(2, f"train.py: config error: {err}\n")
    if args.print_config:
        print(dump_config(config), end="")
        return 0

    if args.dry_run:
        from training.dry_run import describe, dry_run

        try:
            print(describe(dry_run(config)))
        except (ConfigError, FileNotFoundError, ValueError) as err:
            parser.exit(2, f"train.py --dry-run: {err}\n")
        return 0

    from model.loading import ModelLoadError
    from model.profile import ProfileError
    from training.checkpoints import ResumeError
    from training.collator import TemplateError
    from training.records import RecordError
    from training.trainer import run_training

    try:
        run_training(config, resume=args.resume)
    except (ConfigError, RecordError, TemplateError, ProfileError, ModelLoadError, ResumeError, FileNotFoundError,
            FileExistsError) as err:
        parser.exit(2, f"train.py: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
