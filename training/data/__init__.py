"""Training data: `python -m training.data build|stats` (see __main__.py) over the loaders and target builders."""
from training.data.build import SOURCES, TARGETS, BuildOptions, BuildSummary, build
from training.data.stats import file_stats

__all__ = ["SOURCES", "TARGETS", "BuildOptions", "BuildSummary", "build", "file_stats"]
