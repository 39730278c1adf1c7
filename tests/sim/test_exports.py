"""The sim stage's public surface and its independence from theory."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import afdsizer.sim as sim
from afdsizer.sim import SimConfig

PRIVATE_MODULES = ("_config", "_engine", "_result")
SIM_DIR = Path(sim.__file__).parent


def test_all_is_sorted_and_importable() -> None:
    """``__all__`` is sorted (constants first, as ruff sorts) and every name resolves."""
    assert sim.__all__ == sorted(sim.__all__, key=lambda n: (not n.isupper(), n))
    for name in sim.__all__:
        assert getattr(sim, name) is not None


def test_every_module_export_is_reexported() -> None:
    """Each private module's ``__all__`` is re-exported by the package."""
    for module_name in PRIVATE_MODULES:
        module = importlib.import_module(f"afdsizer.sim.{module_name}")
        assert set(module.__all__) <= set(sim.__all__), module_name


def test_sim_never_imports_theory_or_later_stages() -> None:
    """sim is theory's independent check: no module of it imports theory, validate, ..."""
    forbidden = ("afdsizer.theory", "afdsizer.validate", "afdsizer.report", "afdsizer.sweep")
    for path in SIM_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"


def test_config_repr_is_its_constructor() -> None:
    """SimConfig prints as the call that builds it."""
    cfg = SimConfig(ratio=3, batch=16, steps=500, seed=2)
    assert eval(repr(cfg), {"SimConfig": SimConfig}) == cfg
