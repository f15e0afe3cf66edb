"""The one error an evaluation raises on bad input (data, run folder, settings); the CLI prints it as one line."""
from __future__ import annotations


class EvaluationError(ValueError):
    """An evaluation cannot start or go on; the message names the file, problem or flag and what to do."""
