"""A checkpoint trained by train.py is served and evaluated with the image bounds it was trained with: they travel in
its serving profile (model.profile), not in the processor config."""
import shutil

from model.images import ImageOptions
from model.loading import checkpoint_profile, load_model
from model.profile import default_profile, save_profile


def test_trained_bounds_follow_the_checkpoint(tiny_model_dir, tmp_path):
    trained = tmp_path / "trained"
    shutil.copytree(tiny_model_dir, trained)
    # Without a serving profile the checkpoint is not ours: the serving defaults apply.
    assert checkpoint_profile(trained).image_options() == ImageOptions()
    save_profile(trained, default_profile().replace(min_pixels=3136, max_pixels=12544, origin="train.py"))
    assert checkpoint_profile(trained).image_options() == ImageOptions(min_pixels=3136, max_pixels=12544)
    assert load_model(trained, device="cpu").image_options == ImageOptions(min_pixels=3136, max_pixels=12544)


def test_hub_ids_and_untrained_dirs_get_serving_defaults(tiny_model_dir):
    assert checkpoint_profile("Qwen/Qwen2.5-VL-7B-Instruct").image_options() == ImageOptions()
    assert checkpoint_profile(None).image_options() == ImageOptions()
    assert checkpoint_profile(tiny_model_dir).image_options() == ImageOptions()
