"""The training config: every shipped YAML loads, overrides apply, and mistakes are named."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.config import Config, ConfigError, config_to_dict, dump_config, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def train_configs() -> list[Path]:
    # configs/ also holds other tools' configs (e.g. the experiment runner's); ours launch train.py.
    return sorted(p for p in CONFIGS.glob("*.yaml") if "train.py --config" in p.read_text(encoding="utf-8").split("\nmodel:")[0])


def test_every_shipped_train_config_loads_and_starts_with_its_launch_command():
    paths = train_configs()
    names = {p.stem for p in paths}
    for mode in ("lora", "mlp", "full"):
        assert {f"qwen2.5-vl-7b-theorem-{mode}", f"qwen2.5-vl-7b-plain-{mode}"} <= names
    assert {"demo-cpu", "tiny-test"} <= names
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# Launch"), f"{path.name} must open with its launch command"
        assert f"--config configs/{path.name}" in text.split("\nmodel:")[0], path.name
        config = load_config(path)
        assert isinstance(config, Config)
        assert config.train.output_dir.startswith("runs/"), path.name


@pytest.mark.parametrize("mode", ["lora", "mlp", "full"])
def test_plain_counterpart_differs_only_in_target_and_output_dir(mode):
    theorem = config_to_dict(load_config(CONFIGS / f"qwen2.5-vl-7b-theorem-{mode}.yaml"))
    plain = config_to_dict(load_config(CONFIGS / f"qwen2.5-vl-7b-plain-{mode}.yaml"))
    assert (theorem["data"]["target"], plain["data"]["target"]) == ("theorem", "plain")
    assert theorem["tuning"]["mode"] == mode
    for cfg in (theorem, plain):
        del cfg["data"]["target"], cfg["train"]["output_dir"]
    assert theorem == plain


def test_every_accelerate_config_is_yaml_with_a_launch_line():
    paths = sorted((CONFIGS / "accelerate").glob("*.yaml"))
    assert {"deepspeed-zero3.yaml", "fsdp.yaml"} <= {p.name for p in paths}
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert "accelerate launch --config_file configs/accelerate/" + path.name in text
        data = yaml.safe_load(text)
        assert data["distributed_type"] in {"DEEPSPEED", "FSDP", "MULTI_GPU"}


def test_overrides_are_typed_and_nested(tmp_path):
    config = load_config(CONFIGS / "tiny-test.yaml", ["train.lr=2e-5", "data.target=plain", "train.max_steps=3",
                                                      "tuning.lora.targets=[q_proj, v_proj]",
                                                      "model.scratch.hidden_size=48", "data.eval_split=null"])
    assert config.train.lr == 2e-5 and isinstance(config.train.lr, float)
    assert config.data.target == "plain"
    assert config.train.max_steps == 3
    assert config.tuning.lora.targets == ["q_proj", "v_proj"]
    assert config.model.scratch["hidden_size"] == 48 and config.model.scratch["num_hidden_layers"] == 2
    assert config.data.eval_split is None
    # The dump round-trips through YAML to the same config.
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(config), encoding="utf-8")
    assert load_config(path) == config


def test_yaml_scientific_notation_without_a_dot_reads_as_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {dir: x}\ntrain: {lr: 2e-5, weight_decay: 0}\n", encoding="utf-8")
    config = load_config(path)
    assert config.train.lr == 2e-5 and config.train.weight_decay == 0.0


@pytest.mark.parametrize("override, fragment", [
    ("train.lrr=1", "unknown key 'train.lrr'"),
    ("trainn.lr=1", "unknown key 'trainn'"),
    ("train.batch_size=two", "train.batch_size: expected an integer"),
    ("train.batch_size=2.5", "train.batch_size: expected an integer"),
    ("train.lr=fast", "train.lr: expected a number"),
    ("train.gradient_checkpointing=maybe", "expected true or false"),
    ("tuning.mode=qlora", "tuning.mode: must be one of lora, mlp, full"),
    ("data.target=vanilla", "data.target: must be one of theorem, plain, answer"),
    ("tuning.lora.targets=q_proj", "tuning.lora.targets: expected a list of a string"),
    ("train.batch_size=0", "train.batch_size: must be >= 1"),
    ("tuning.train_vision=true", "tuning.train_vision"),
    ("eval.every_checkpoint=true", "needs data.eval_split"),
    ("train", "must look like section.key=value"),
])
def test_mistakes_are_errors_that_name_the_key(override, fragment):
    base = CONFIGS / "qwen2.5-vl-7b-theorem-lora.yaml"
    extra = ["data.eval_split=null"] if override.startswith("eval.") else []
    with pytest.raises(ConfigError) as info:
        load_config(base, extra + [override])
    assert fragment in str(info.value)
    if "unknown key" in fragment:
        assert "allowed in" in str(info.value) and str(base) in str(info.value)


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {dir: x}\ntrain:\n  learning_rate: 1e-4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'train\.learning_rate'; allowed in train: .*lr"):
        load_config(path)


def test_missing_file_and_missing_data_dir_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="data.dir: is required"):
        load_config(path)
