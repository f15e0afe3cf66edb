"""Data flows one way: theorem_bank -> model -> training -> app, train.py, evaluate.py (DESIGN.md). Every import
of every module, at the top or inside a function, is read with `ast`; none may reach upward, and the project's
modules may not import each other in a circle."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = {"theorem_bank": 0, "model": 1, "training": 2, "app": 3, "train": 3, "evaluate": 3}
PACKAGES = ("theorem_bank", "model", "training", "app")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    files += [REPO / "train.py", REPO / "evaluate.py"]
    return {module_name(p): p for p in files}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, each resolved to the longest known module name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        parts = target.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                resolved.add(candidate)
                break
    resolved.discard(name)
    return resolved


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def layer(name: str) -> int:
    return LAYERS[name.split(".")[0]]


def test_no_module_imports_upward():
    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets if layer(b) > layer(a))
    assert upward == [], "imports that reach upward:\n" + "\n".join(upward)


def test_no_import_circle():
    edges = graph()
    # A package's __init__ re-exporting its modules is not a circle with them: only module-to-module edges count.
    edges = {a: {b for b in targets if not (a.startswith(b + ".") and b in (a.rsplit(".", 1)[0],))}
             for a, targets in edges.items()}
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == [], "import circles:\n" + "\n".join(cycles)


def test_the_checker_is_not_fooled_by_a_relative_or_lazy_import():
    # the parser sees imports inside functions and relative imports: the one upward import evaluate.py used to
    # have (training.experiment -> evaluate) would be reported
    source = "def f():\n    from evaluate import prompt_version\n    from . import runner\n"
    tree_imports = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            tree_imports.add((node.module, node.level))
    assert ("evaluate", 0) in tree_imports and (None, 1) in tree_imports
