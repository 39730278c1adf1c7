"""The public surface: every stage exports what it lists, documented, and imports flow one way."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import afdsizer

STAGES = ("workload", "cost", "theory", "sim", "validate", "report", "sweep", "plan")
# docs/design.md §7: what each stage may import from afdsizer (besides errors and _io).
ALLOWED_IMPORTS = {
    "workload": set(),
    "cost": set(),
    "theory": {"workload", "cost"},
    "sim": {"workload", "cost"},
    "validate": {"workload", "cost", "theory", "sim"},
    "report": {"workload", "cost", "theory", "sim", "validate"},
    "sweep": {"workload", "cost", "theory", "sim"},
    "plan": {"workload", "cost", "theory", "sim"},
}
SRC = Path(afdsizer.__file__).parent


@pytest.mark.parametrize("stage", STAGES)
def test_all_names_exist_once_and_are_documented(stage: str) -> None:
    """Each name in a stage's __all__ exists, is listed once, and classes/functions have docs."""
    module = importlib.import_module(f"afdsizer.{stage}")
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"duplicates in afdsizer.{stage}.__all__"
    for name in names:
        obj = getattr(module, name)  # AttributeError names the missing export
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"afdsizer.{stage}.{name} has no docstring"


@pytest.mark.parametrize("stage", STAGES)
def test_imports_flow_one_way(stage: str) -> None:
    """No module of a stage imports a stage above it (theory and sim never import each other)."""
    offending = []
    for path in sorted((SRC / stage).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                parts = target.split(".")
                if parts[0] != "afdsizer" or len(parts) < 2:
                    continue
                other = parts[1]
                if other in STAGES and other != stage and other not in ALLOWED_IMPORTS[stage]:
                    offending.append(f"{path.relative_to(SRC)} imports afdsizer.{other}")
                if other in {"cli", "_commands"}:
                    offending.append(f"{path.relative_to(SRC)} imports the CLI")
    assert not offending, "; ".join(offending)
