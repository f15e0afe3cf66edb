"""Bad input reaches a user as one line `<prog>: <message>` on stderr and exit code 2, never a traceback;
and library code raises typed errors (the CLIs decide how to exit), never SystemExit."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_PACKAGES = ("app", "model", "training", "theorem_bank")


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, prog: str, *names: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"{prog}: "), line
    for name in names:
        assert name in line, (name, line)
    return line


def test_a_bad_record_file_names_its_line_record_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "p1", "question": "What is x?", "answer": "3"}) + "\n", encoding="utf-8")
    result = run_cli(["-m", "training.data", "build", "--source", "records", "--path", str(bad), "--target", "theorem",
                      "--out", str(tmp_path / "out.jsonl")], tmp_path)
    assert_one_line_error(result, "python -m training.data", f"{bad}:1", "'p1'", "'source'")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_missing_training_config_is_named(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    result = run_cli([str(ROOT / "train.py"), "--config", str(missing)], tmp_path)
    assert_one_line_error(result, "train.py", str(missing))


def test_a_missing_evaluation_data_path_is_named(tmp_path):
    missing = tmp_path / "problems.jsonl"
    result = run_cli([str(ROOT / "evaluate.py"), "run", "--benchmark", "records", "--data", str(missing),
                      "--model", str(tmp_path / "model"), "--out", str(tmp_path / "run")], tmp_path)
    assert_one_line_error(result, "evaluate.py", str(missing), "--data")


def test_a_duplicate_record_id_in_evaluation_data_is_named(tmp_path):
    record = {"id": "dup", "question": "What is x?", "answer": "3", "source": "mine"}
    data = tmp_path / "problems.jsonl"
    data.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    result = run_cli([str(ROOT / "evaluate.py"), "run", "--benchmark", "records", "--data", str(data),
                      "--model", str(tmp_path / "model"), "--out", str(tmp_path / "run")], tmp_path)
    assert_one_line_error(result, "evaluate.py", str(data), "'dup'")


def test_an_experiment_config_with_a_bad_key_is_named(tmp_path):
    bad = tmp_path / "exp.yaml"
    bad.write_text("seeds: [0]\neval: {limit: 3}\n", encoding="utf-8")
    result = run_cli(["-m", "training.experiment", "--config", str(bad)], tmp_path)
    assert_one_line_error(result, "python -m training.experiment", "eval.limit")


def _entry_point_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes a CLI owns: `def main` at module level and the `if __name__ == "__main__":` block."""
    owned: set[int] = set()
    for node in tree.body:
        is_main_def = isinstance(node, ast.FunctionDef) and node.name == "main"
        is_main_guard = (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                         and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")
        if is_main_def or is_main_guard:
            owned.update(id(child) for child in ast.walk(node))
    return owned


def _raises_system_exit(node: ast.AST) -> bool:
    if isinstance(node, ast.Raise) and node.exc is not None:
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(target, ast.Name) and target.id == "SystemExit"
    if isinstance(node, ast.Call):  # sys.exit(...) / exit(...) in library code is the same thing
        func = node.func
        return (isinstance(func, ast.Attribute) and func.attr == "exit" and isinstance(func.value, ast.Name)
                and func.value.id == "sys") or (isinstance(func, ast.Name) and func.id in ("exit", "quit"))
    return False


def test_no_library_module_raises_system_exit():
    offenders = []
    for package in LIBRARY_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__main__.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            owned = _entry_point_nodes(tree)
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                          if id(node) not in owned and _raises_system_exit(node)]
    assert not offenders, f"raise a typed error instead (the CLI prints it): {offenders}"


@pytest.mark.parametrize("source", ["raise SystemExit('bad record')", "import sys\nsys.exit(3)"])
def test_the_library_check_sees_a_system_exit(source):
    tree = ast.parse(f"def load():\n    " + source.replace("\n", "\n    "))
    assert any(_raises_system_exit(node) for node in ast.walk(tree) if id(node) not in _entry_point_nodes(tree))
