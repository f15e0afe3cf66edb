"""A checkpoint trained by train.py is served and evaluated with the image bounds it was trained with."""
import json
import shutil

from model.images import ImageOptions, trained_image_options
from model.loading import load_model


def test_trained_bounds_follow_the_checkpoint(tiny_model_dir, tmp_path):
    trained = tmp_path / "trained"
    shutil.copytree(tiny_model_dir, trained)
    config_path = trained / "processor_config.json"
    config = json.loads(config_path.read_text())
    config["image_processor"]["size"] = {"shortest_edge": 3136, "longest_edge": 12544}
    config_path.write_text(json.dumps(config))

    # Without train_config.yaml the checkpoint is not ours: Qwen's generic bounds are ignored.
    assert trained_image_options(trained) == ImageOptions()
    (trained / "train_config.yaml").write_text("model: {}\n")
    assert trained_image_options(trained) == ImageOptions(min_pixels=3136, max_pixels=12544)
    assert load_model(trained, device="cpu").image_options == ImageOptions(min_pixels=3136, max_pixels=12544)


def test_hub_ids_and_untrained_dirs_get_serving_defaults(tiny_model_dir):
    assert trained_image_options("Qwen/Qwen2.5-VL-7B-Instruct") == ImageOptions()
    assert trained_image_options(None) == ImageOptions()
    assert trained_image_options(tiny_model_dir) == ImageOptions()
