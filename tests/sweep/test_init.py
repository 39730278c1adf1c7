"""The public surface of afdsizer.sweep: complete, sorted as ruff sorts it, importable."""

from __future__ import annotations

import types

import afdsizer.sweep as sweep


def _ruff_key(name: str) -> tuple[int, str]:
    """Constants first, then classes, then functions (ruff's RUF022 order)."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_complete_and_sorted() -> None:
    """__all__ lists every public name of the package exactly once, in ruff's order."""
    public = {
        name
        for name, value in vars(sweep).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(sweep.__all__) == public
    assert sweep.__all__ == sorted(sweep.__all__, key=_ruff_key)
