"""The Theorem-SFT vs vanilla experiment: arms differ only in their target, the quick variant merges, and
the aggregation gives the mean ± sd and paired tests of constructed results."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import experiment
from training.config import ConfigError, config_to_dict

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "experiment-synthetic.yaml"


def test_shipped_config_and_quick_variant_load():
    full = experiment.load_experiment_config(CONFIG)
    quick = experiment.load_experiment_config(CONFIG, quick=True)
    assert full.targets == ["theorem", "plain", "answer"] and len(full.seeds) >= 3
    assert quick.train_config.endswith("tiny-test.yaml") and quick.curriculum.n < full.curriculum.n
    # nested sections merge key by key: the quick eval keeps the full config's splits
    assert quick.eval.splits == full.eval.splits and quick.eval.limit_per_split == 3
    assert CONFIG.read_text(encoding="utf-8").startswith("# Launch: python -m training.experiment")


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [0]\neval: {limit: 3}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key 'eval.limit'"):
        experiment.load_experiment_config(bad)


def test_values_are_typed_by_the_training_config_loader(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [zero]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"seeds\[0\]: expected an integer"):
        experiment.load_experiment_config(bad)


def test_arms_differ_only_in_target_seed_and_output(tmp_path):
    exp = experiment.load_experiment_config(CONFIG, quick=True)
    init = tmp_path / "init"
    configs = {t: config_to_dict(experiment.arm_config(exp, tmp_path / "cur", t, 0, tmp_path / t, init))
               for t in exp.targets}
    theorem = configs["theorem"]
    assert theorem["model"]["scratch"] is None and theorem["model"]["path"] == str(init)
    for target, config in configs.items():
        differing = {(section, key) for section in config for key in config[section]
                     if config[section][key] != theorem[section][key]}
        expected = set() if target == "theorem" else {("data", "target"), ("train", "output_dir")}
        assert differing == expected, target
        assert config["data"]["target"] == target and config["data"]["dir"] == str(tmp_path / "cur")


def write_eval(folder: Path, flags: dict[str, tuple[str, bool]]) -> Path:
    folder.mkdir(parents=True)
    rows = [{"key": k, "id": k, "split": split, "variant": "original", "correct": ok, "tutor_correct": ok}
            for k, (split, ok) in flags.items()]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def test_aggregate_mean_sd_and_paired_tests(tmp_path):
    exp = experiment.ExperimentConfig(targets=["theorem", "plain"], seeds=[0, 1, 2])
    exp.eval.splits = ["test_iid", "test_numbers"]
    exp.eval.bootstrap_resamples = 2000
    problems = [(f"p{i}", "test_iid" if i < 10 else "test_numbers") for i in range(20)]
    arms = {}
    # theorem solves test_iid problems 0..7 (80%) in every seed, plain 0..3 (40%) in seeds 0,1 and 0..5 in seed 2
    for seed in exp.seeds:
        theorem = {k: (s, s == "test_iid" and int(k[1:]) < 8) for k, s in problems}
        plain_cut = 4 if seed < 2 else 6
        plain = {k: (s, s == "test_iid" and int(k[1:]) < plain_cut) for k, s in problems}
        arms[("theorem", seed)] = write_eval(tmp_path / f"theorem{seed}", theorem)
        arms[("plain", seed)] = write_eval(tmp_path / f"plain{seed}", plain)
    result = experiment.aggregate(exp, arms, "correct")
    iid = result["table"]["theorem"]["test_iid"]
    assert iid["mean"] == pytest.approx(0.8) and iid["sd"] == 0
    plain = result["table"]["plain"]["test_iid"]
    assert plain["per_seed"] == [0.4, 0.4, 0.6]
    assert plain["mean"] == pytest.approx(1.4 / 3) and plain["sd"] == pytest.approx(0.11547, abs=1e-4)
    test = result["tests"]["theorem_vs_plain"]["test_iid"]
    assert test["problems"] == 10 and test["difference"] == pytest.approx(0.8 - 1.4 / 3)
    # discordant seed-matched pairs: 4 + 4 + 2 = 10 only-theorem, none the other way -> p = 2 / 2**10
    assert (test["only_theorem"], test["only_plain"]) == (10, 0)
    assert test["mcnemar_p"] == pytest.approx(2 / 1024)
    assert test["ci95"][0] > 0
    assert result["tests"]["theorem_vs_plain"]["test_numbers"]["difference"] == 0
    table = experiment.render_tables(exp, {"answer": result, "value": result, "tutor": result})
    assert "letter ignored" in table
    assert "| theorem | 80.0 ± 0.0 | 0.0 ± 0.0 | 40.0 ± 0.0 |" in table
