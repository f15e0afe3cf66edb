"""Evaluation: the resumable, sharded runner (runner.py), grading (scoring.py), statistics (stats.py),
summaries and paired comparison (report.py), robustness probes (probes.py) and categories (categories.py).
`python evaluate.py` is the command line over this package."""
