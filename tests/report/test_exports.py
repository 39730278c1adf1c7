"""The report stage's public surface: a sorted, complete ``__all__`` of importable names."""

from __future__ import annotations

import importlib
import pkgutil

import afdsizer.report as report


def test_all_is_sorted_and_resolves() -> None:
    """``__all__`` is sorted (constants first, as ruff sorts) and every name resolves."""
    assert report.__all__ == sorted(report.__all__, key=lambda n: (not n.isupper(), n))
    for name in report.__all__:
        assert getattr(report, name) is not None


def test_private_modules_are_reexported() -> None:
    """Each private module's ``__all__`` is re-exported by the package."""
    for info in pkgutil.iter_modules(report.__path__):
        module = importlib.import_module(f"afdsizer.report.{info.name}")
        assert set(module.__all__) <= set(report.__all__), info.name
