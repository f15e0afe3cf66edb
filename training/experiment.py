"""Theorem-SFT versus vanilla SFT on the synthetic curriculum, as a controlled CPU experiment.

    python -m training.experiment --config configs/experiment-synthetic.yaml [--quick]

For every seed, the same from-scratch model (one initialisation: weights AND tokenizer, trained on the
texts of all three targets) is trained three times, with the `theorem`, `plain` and `answer` targets
and nothing else changed (same problems, images, prompts, steps, batch, learning rate). Each model is
evaluated on every held-out split by the evaluation runner, and the results are tabulated as
mean ± sd over seeds, with paired tests of theorem vs plain and theorem vs answer on the same problems.

The run is resumable: finished trainings (train_summary.json) and evaluations (summary.json) are reused.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.evaluation.stats import mcnemar_exact, mean_sd, paired_bootstrap

TARGETS = ("theorem", "plain", "answer")


@dataclass
class CurriculumSection:
    dir: str = "runs/experiment-synthetic/curriculum"
    n: int = 6000
    seed: int = 0
    test_fraction: float = 0.05


@dataclass
class EvalSection:
    splits: list[str] = field(default_factory=lambda: ["test_iid", "test_surface", "test_compose", "test_numbers"])
    limit_per_split: int | None = 200
    batch_size: int = 8
    max_new_tokens: int = 256
    bootstrap_resamples: int = 10_000


@dataclass
class ExperimentConfig:
    output_dir: str = "runs/experiment-synthetic"
    train_config: str = "configs/demo-cpu.yaml"
    # key=value overrides applied to EVERY arm (identical across targets and seeds)
    train_overrides: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # one from-scratch initialisation per seed shared by all targets (only for configs with model.scratch)
    shared_init: bool = True
    threads: int = 2
    curriculum: CurriculumSection = field(default_factory=CurriculumSection)
    eval: EvalSection = field(default_factory=EvalSection)


def load_experiment_config(path: str | Path, quick: bool = False) -> ExperimentConfig:
    """The YAML file, with its `quick:` section merged over the top level when `quick`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        from training.config import ConfigError

        raise ConfigError(f"experiment config {path} not found (shipped: configs/experiment-synthetic.yaml)") from None
    quick_raw = raw.pop("quick", {}) or {}
    if quick:
        for key, value in quick_raw.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
    from training.config import ConfigError, build_typed

    config = build_typed(ExperimentConfig, raw, str(path))  # a ConfigError names the file and key
    bad = [t for t in config.targets if t not in TARGETS]
    if bad or "theorem" not in config.targets:
        raise ConfigError(f"{path}: targets must include 'theorem' and be among {TARGETS}; got {config.targets}")
    return config


# --------------------------------------------------------------------------- steps

def ensure_curriculum(section: CurriculumSection, say) -> Path:
    folder = Path(section.dir)
    if (folder / "manifest.json").is_file():
        return folder
    from training.synthetic.generate import generate

    say(f"writing the synthetic curriculum ({section.n} problems, seed {section.seed}) to {folder}")
    generate(section.n, section.seed, folder, section.test_fraction, progress=True)
    return folder


def arm_config(exp: ExperimentConfig, curriculum: Path, target: str, seed: int, out: Path, init: Path | None):
    """The training config of one arm: the base config + shared overrides + exactly target, seed and paths."""
    from training.config import load_config

    overrides = [*exp.train_overrides, f"data.dir={curriculum}", f"data.target={target}", f"train.seed={seed}",
                 f"train.output_dir={out}"]
    config = load_config(exp.train_config, overrides)
    if init is not None:
        config.model.scratch = None
        config.model.path = str(init)
    return config


def build_shared_init(exp: ExperimentConfig, curriculum: Path, seed: int, init: Path, say) -> Path | None:
    """One from-scratch checkpoint for all targets of a seed: its tokenizer is trained on every target's
    texts, so the arms differ in their supervision only, not in their vocabulary or initial weights."""
    probe = arm_config(exp, curriculum, "theorem", seed, init.parent / "unused", None)
    if not exp.shared_init or probe.model.scratch is None:
        return None
    if (init / "config.json").is_file():
        return init
    from model.tiny import build_tiny_checkpoint
    from training.collator import PrepareStats
    from training.trainer import load_examples, question_texts, scratch_corpus

    corpus: list[str] = []
    questions: list[str] = []  # the same for every target
    for target in exp.targets:
        config = arm_config(exp, curriculum, target, seed, init.parent / "unused", None)
        examples, _ = load_examples(config, config.data.train_split, PrepareStats())
        corpus.extend(scratch_corpus(examples))
        questions = questions or question_texts(examples)
    say(f"seed {seed}: shared from-scratch init in {init} (tokenizer trained on {len(corpus)} texts of all targets)")
    # With their frequencies, as the demo's tokenizer is trained: deduplicated, the prompt shared by every example
    # counts once, its words stay in pieces and every sequence is a quarter longer.
    build_tiny_checkpoint(init, seed=seed, corpus=corpus, **probe.model.scratch)
    # marks the init as from scratch, so each arm records the point letters it was trained on (model.point_names)
    from model.point_names import trained_alphabet
    from model.profile import default_profile, save_profile

    save_profile(init, default_profile().replace(point_names=trained_alphabet(questions), origin="train.py"))
    return init


def train_arm(config, say) -> dict:
    from training.trainer import run_training

    out = Path(config.train.output_dir)
    summary = out / "train_summary.json"
    if summary.is_file():
        return json.loads(summary.read_text(encoding="utf-8"))
    resume = (out / "checkpoints").is_dir() and any(p.name.startswith("checkpoint-") for p in (out / "checkpoints").iterdir())
    say(f"training {out.name} ({'resuming' if resume else 'from the start'})")
    run_training(config, resume=resume)
    return json.loads(summary.read_text(encoding="utf-8"))


def evaluate_arm(exp: ExperimentConfig, config, curriculum: Path, out: Path) -> dict:
    """Evaluate one trained arm on the held-out splits, by evaluate.py's own runner, as the arm was trained
    (its serving profile); only the answer budget is the experiment's."""
    from training.evaluation.run import EvalRequest, run_evaluation

    if (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text(encoding="utf-8"))
    request = EvalRequest(benchmark="synthetic", data=str(curriculum), out=str(out), model=config.train.output_dir,
                          mode="choice", limit=exp.eval.limit_per_split, splits=list(exp.eval.splits),
                          batch_size=exp.eval.batch_size, device="cpu",
                          overrides={"max_new_tokens": exp.eval.max_new_tokens})
    return run_evaluation(request)


# --------------------------------------------------------------------------- aggregation

def _flags(eval_dir: Path, field_name: str) -> dict[str, tuple[str, bool]]:
    """key -> (split, correct) for one arm's original problems."""
    from training.evaluation.report import load_run

    from training.evaluation.scoring import value_correct

    flag = value_correct if field_name == "value_correct" else (lambda line: bool(line.get(field_name)))
    return {line["key"]: (line["split"], flag(line)) for line in load_run(eval_dir)
            if line.get("variant", "original") == "original"}


def aggregate(exp: ExperimentConfig, arms: dict[tuple[str, int], Path], field_name: str) -> dict[str, Any]:
    """Mean ± sd over seeds per target and split; paired tests of theorem vs each other target per split."""
    flags = {arm: _flags(path, field_name) for arm, path in arms.items()}
    splits = list(exp.eval.splits)
    table: dict[str, dict[str, dict]] = {}
    for target in exp.targets:
        table[target] = {}
        for split in [*splits, "all"]:
            accs = []
            for seed in exp.seeds:
                values = [ok for s, ok in flags[(target, seed)].values() if split in ("all", s)]
                accs.append(sum(values) / len(values) if values else float("nan"))
            mean, sd = mean_sd(accs)
            table[target][split] = {"mean": mean, "sd": sd, "per_seed": accs}
    tests: dict[str, dict[str, dict]] = {}
    for other in [t for t in exp.targets if t != "theorem"]:
        tests[f"theorem_vs_{other}"] = {}
        for split in [*splits, "all"]:
            keys = sorted(k for k, (s, _) in flags[("theorem", exp.seeds[0])].items() if split in ("all", s))
            keys = [k for k in keys if all(k in flags[(t, seed)] for t in ("theorem", other) for seed in exp.seeds)]
            # per problem: accuracy averaged over seeds; problems are the resampled unit
            a = [sum(flags[("theorem", seed)][k][1] for seed in exp.seeds) / len(exp.seeds) for k in keys]
            b = [sum(flags[(other, seed)][k][1] for seed in exp.seeds) / len(exp.seeds) for k in keys]
            boot = paired_bootstrap(a, b, n_resamples=exp.eval.bootstrap_resamples, seed=0)
            # McNemar on the seed-matched pairs pooled over seeds
            only_theorem = sum(1 for seed in exp.seeds for k in keys
                               if flags[("theorem", seed)][k][1] and not flags[(other, seed)][k][1])
            only_other = sum(1 for seed in exp.seeds for k in keys
                             if flags[(other, seed)][k][1] and not flags[("theorem", seed)][k][1])
            tests[f"theorem_vs_{other}"][split] = {
                "problems": len(keys), "difference": boot["difference"], "ci95": [boot["low"], boot["high"]],
                "only_theorem": only_theorem, f"only_{other}": only_other,
                "mcnemar_p": mcnemar_exact(only_theorem, only_other)}
    return {"field": field_name, "table": table, "tests": tests}


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}"


def render_tables(exp: ExperimentConfig, results: dict[str, Any]) -> str:
    splits = [*exp.eval.splits, "all"]
    out = []
    for block, title in (("answer", "Answer accuracy (the model's own Answer line, graded by its choice letter)"),
                         ("value", "Answer value accuracy (the value on the model's Answer line, letter ignored)"),
                         ("tutor", "Tutor accuracy (the checker executes the model's chain of Exec relations)")):
        if block not in results:
            continue
        agg = results[block]
        out += [f"### {title}, % (mean ± sd over seeds {exp.seeds})", "",
                "| target | " + " | ".join(splits) + " |", "| --- |" + " ---: |" * len(splits)]
        for target in exp.targets:
            cells = [f"{_pct(agg['table'][target][s]['mean'])} ± {_pct(agg['table'][target][s]['sd'])}" for s in splits]
            out.append(f"| {target} | " + " | ".join(cells) + " |")
        out.append("")
        for name, per_split in agg["tests"].items():
            out += [f"Paired test {name.replace('_', ' ')} ({block} accuracy): difference in points, paired bootstrap "
                    f"95% CI over problems (seed-averaged), exact McNemar p on seed-matched pairs", "",
                    "| split | problems | difference | 95% CI | McNemar p |", "| --- | ---: | ---: | --- | ---: |"]
            for split in splits:
                t = per_split[split]
                lo, hi = t["ci95"]
                out.append(f"| {split} | {t['problems']} | {100 * t['difference']:+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] "
                           f"| {t['mcnemar_p']:.3g} |")
            out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- driver

def run_experiment(exp: ExperimentConfig, say=print) -> dict[str, Any]:
    import torch

    if exp.threads:
        torch.set_num_threads(exp.threads)
    started = time.time()
    out = Path(exp.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    curriculum = ensure_curriculum(exp.curriculum, say)
    arms_total = len(exp.targets) * len(exp.seeds)
    say(f"experiment: {len(exp.targets)} targets x {len(exp.seeds)} seeds = {arms_total} trainings, each evaluated on "
        f"{len(exp.eval.splits)} splits x {exp.eval.limit_per_split or 'all'} problems; "
        f"a projection of the total time is printed after the first arm")
    arms: dict[tuple[str, int], Path] = {}
    timings: dict[str, dict] = {}
    done = 0
    for seed in exp.seeds:
        init = build_shared_init(exp, curriculum, seed, out / "init" / f"seed{seed}", say)
        for target in exp.targets:
            arm_started = time.time()
            arm_dir = out / "arms" / f"{target}-seed{seed}"
            config = arm_config(exp, curriculum, target, seed, arm_dir, init)
            train_summary = train_arm(config, say)
            trained = time.time()
            summary = evaluate_arm(exp, config, curriculum, arm_dir / "eval")
            arms[(target, seed)] = arm_dir / "eval"
            timings[f"{target}-seed{seed}"] = {"train_s": round(trained - arm_started, 1),
                                               "eval_s": round(time.time() - trained, 1),
                                               "train_steps": train_summary.get("steps"),
                                               "train_loss": train_summary.get("train_loss")}
            done += 1
            elapsed = time.time() - started
            say(f"[{done}/{arms_total}] {target} seed {seed}: accuracy {_pct(summary['accuracy'])}%, tutor "
                f"{_pct(summary['tutor_accuracy'])}%; elapsed {elapsed / 60:.1f} min, projected total "
                f"{elapsed / done * arms_total / 60:.1f} min")
    results = {
        "config": dataclasses.asdict(exp),
        "curriculum": str(curriculum),
        "answer": aggregate(exp, arms, "correct"),
        "value": aggregate(exp, arms, "value_correct"),
        "tutor": aggregate(exp, arms, "tutor_correct"),
        "timings": timings,
        "wall_time_s": round(time.time() - started, 1),
        "threads": torch.get_num_threads(),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = render_tables(exp, results) + f"\nWall time: {results['wall_time_s'] / 60:.1f} min on {results['threads']} CPU threads.\n"
    (out / "table.md").write_text(text, encoding="utf-8")
    say(text)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.experiment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="e.g. configs/experiment-synthetic.yaml")
    parser.add_argument("--quick", action="store_true", help="the config's small `quick:` variant (CI)")
    parser.add_argument("--out", "--output-dir", dest="output_dir", default=None,
                        help="output folder (default: the config's output_dir); --output-dir is the old spelling")
    args = parser.parse_args(argv)
    try:
        return _run_from_args(args)
    except user_errors() as err:
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return 2


def user_errors() -> tuple[type[Exception], ...]:
    """The typed errors that mean bad input (a config, a record, a data path), not a bug: printed as one line."""
    from model.backends import BackendError
    from model.loading import ModelLoadError
    from model.profile import ProfileError
    from training.checkpoints import ResumeError
    from training.config import ConfigError
    from training.evaluation.errors import EvaluationError
    from training.records import RecordError
    from training.synthetic.generate import GenerationError

    return (ConfigError, RecordError, EvaluationError, ResumeError, GenerationError, ProfileError, ModelLoadError,
            BackendError, FileNotFoundError)


def _run_from_args(args) -> int:
    exp = load_experiment_config(args.config, quick=args.quick)
    if args.output_dir:
        # a curriculum kept inside the old output folder moves with it
        old = Path(exp.output_dir)
        curriculum = Path(exp.curriculum.dir)
        if curriculum.is_relative_to(old):
            exp.curriculum.dir = str(Path(args.output_dir) / curriculum.relative_to(old))
        exp.output_dir = args.output_dir
    run_experiment(exp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
