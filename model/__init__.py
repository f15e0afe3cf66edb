"""The solution format, its checker, answers and grading, model loading, prompting and generation."""
