"""Values to strict-JSON types, for every ``--json`` output and the report's embedded data."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, Paths and dataclass-like values to JSON types.

    Non-finite floats become ``None`` so the output is strict JSON.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"r": np.int64(3), "x": (1.5, float("nan")), "p": Path("a/b")})
    {'r': 3, 'x': [1.5, None], 'p': 'a/b'}
    """
    import numpy as np  # here, not at module level: the CLI imports this module at start-up

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value
