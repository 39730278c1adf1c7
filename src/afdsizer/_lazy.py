"""Lazy package exports: a name is imported from its module on first use, not with the package.

``afdsizer.workload`` re-exports names from modules that pull in polars, scipy and numba. A
command that needs one of them should not pay for all: with :func:`lazy_exports` the package's
``__getattr__`` imports the defining module when a name is first looked up (PEP 562), so
``from afdsizer.workload import load_trace`` loads ``_trace`` alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` exporting ``name -> module`` lazily.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Each exported name and the submodule (relative, e.g. ``"_trace"``) that defines it.

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("json", {"JSONDecoder": "decoder"})
    >>> getattr_("JSONDecoder").__module__
    'json.decoder'
    """

    def module_getattr(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        # Cache on the package so the next lookup is a plain attribute access.
        setattr(importlib.import_module(package), name, value)
        return value

    def module_dir() -> list[str]:
        return sorted(exports)

    return module_getattr, module_dir
