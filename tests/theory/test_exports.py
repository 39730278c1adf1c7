"""The theory stage's public surface: a sorted, complete ``__all__`` of importable names."""

from __future__ import annotations

import importlib

import afdsizer.theory as theory

PRIVATE_MODULES = ("_barrier", "_empirical", "_joint", "_meanfield", "_recommend", "_sensitivity")


def test_all_is_sorted_and_importable() -> None:
    """``__all__`` is sorted (constants first, as ruff sorts) and every name resolves."""
    assert theory.__all__ == sorted(theory.__all__, key=lambda n: (not n.isupper(), n))
    for name in theory.__all__:
        assert getattr(theory, name) is not None


def test_every_module_export_is_reexported() -> None:
    """Each private module's ``__all__`` is re-exported by the package."""
    for module_name in PRIVATE_MODULES:
        module = importlib.import_module(f"afdsizer.theory.{module_name}")
        assert set(module.__all__) <= set(theory.__all__), module_name
