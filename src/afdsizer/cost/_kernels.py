"""Which measured kernel a part is fitted on: flat floors flagged, the fastest chosen (§10).

Measured tables hold several kernels for one shape. Some have a flat floor: a fixed 0.1–0.5 ms
from the smallest to the largest problem, which is launch or dispatch overhead, not work, and a
least-squares line through it reports a small error and a wrong α. So, per part:

- a kernel whose time grows by less than :data:`DEGENERATE_MAX_GROWTH` while its work grows by at
  least :data:`DEGENERATE_MIN_WORK_RATIO` is **degenerate**: flagged, and not chosen by default;
- among the others, the default is the **fastest** (geometric mean of time over the work points
  they share), which is what an engine's autotuner picks; the choice and the runners-up are
  recorded;
- a kernel named by the user is taken as given, with a warning when it is degenerate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError

__all__ = [
    "DEGENERATE_MAX_GROWTH",
    "DEGENERATE_MIN_WORK_RATIO",
    "KernelChoice",
    "KernelCurve",
    "choose_kernel",
    "is_degenerate",
]

DEGENERATE_MAX_GROWTH = 2.0
"""A kernel whose time grows less than this factor over its measured work range is a floor."""
DEGENERATE_MIN_WORK_RATIO = 64.0
"""…provided that range spans at least this factor of work (else growth cannot be judged)."""

_Array = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KernelCurve:
    """One kernel's measured time against work for the shapes a part needs.

    Parameters
    ----------
    kernel : str
        ``kernel_source`` of the rows.
    work : ndarray of shape (n,)
        Work axis, increasing (tokens m or N, or KV tokens B·(s+1)).
    time_s : ndarray of shape (n,)
        Time of the part at each work point, s.
    """

    kernel: str
    work: _Array
    time_s: _Array

    @property
    def growth(self) -> float:
        """Time at the largest work over time at the smallest."""
        return float(self.time_s[-1] / self.time_s[0])

    @property
    def work_ratio(self) -> float:
        """Largest over smallest work measured."""
        return float(self.work[-1] / self.work[0])


def is_degenerate(curve: KernelCurve) -> bool:
    """True when ``curve`` is a flat floor: little growth over a wide range of work.

    Examples
    --------
    >>> w = np.geomspace(1, 32768, 16)
    >>> is_degenerate(KernelCurve(kernel="flat", work=w, time_s=3e-4 + 1e-9 * w))
    True
    >>> is_degenerate(KernelCurve(kernel="real", work=w, time_s=5e-6 + 3e-8 * w))
    False
    """
    return curve.work_ratio >= DEGENERATE_MIN_WORK_RATIO and curve.growth < DEGENERATE_MAX_GROWTH


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KernelChoice:
    """The kernel a part uses and why.

    Parameters
    ----------
    kernel : str
        Chosen ``kernel_source``.
    reason : str
        ``"given"`` (named by the user), ``"fastest"`` (of several), ``"only"`` (one candidate)
        or ``"fallback"`` (every candidate degenerate: the fastest of them).
    candidates : list of dict
        Per candidate: ``kernel``, ``degenerate``, ``growth``, ``work_ratio``, ``rows`` and
        ``relative_time`` (geometric-mean time over the shared work points, chosen kernel = 1).
    warnings : list of str
        Degenerate kernel chosen, or degenerate kernels passed over.
    """

    kernel: str
    reason: str
    candidates: list[dict[str, Any]]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and YAML."""
        return dataclasses.asdict(self)


def _relative_times(curves: Sequence[KernelCurve]) -> list[float]:
    """Geometric-mean time of each curve over the log-work interval all of them cover."""
    lo = max(float(c.work[0]) for c in curves)
    hi = min(float(c.work[-1]) for c in curves)
    if lo > hi:  # no common range: compare each at its own points (rare; still a ranking)
        return [float(np.exp(np.mean(np.log(c.time_s)))) for c in curves]
    grid = np.geomspace(lo, hi, 16) if hi > lo else np.array([lo])
    out = []
    for c in curves:
        t = np.interp(np.log(grid), np.log(c.work), c.time_s)
        out.append(float(np.exp(np.mean(np.log(t)))))
    return out


def choose_kernel(
    part: str,
    kernels: Sequence[str],
    curve_of: Callable[[str], KernelCurve | None],
    *,
    wanted: str | None = None,
    rows_of: Callable[[str], int] | None = None,
    work_range: tuple[float, float] | None = None,
) -> KernelChoice:
    """Pick the kernel of ``part`` among ``kernels`` (module notes).

    Parameters
    ----------
    part : str
        Name for messages (``"attention"``, ``"attn_gemm"``, ``"moe"``, ...).
    kernels : sequence of str
        ``kernel_source`` values with rows for the part's shapes and dtype.
    curve_of : callable
        Kernel name -> its :class:`KernelCurve` for the part, or None when it does not cover
        the part's work range.
    wanted : str, optional
        A kernel named by the user (``--attention-kernel`` ...).
    rows_of : callable, optional
        Kernel name -> rows it has (reported only).
    work_range : (float, float), optional
        The work range the part is fitted over (named in the error when nothing covers it).

    Raises
    ------
    InputError
        ``wanted`` has no rows, or no kernel covers the part.
    """
    if wanted is not None and wanted not in kernels:
        have = ", ".join(sorted(kernels)) or "none"
        raise InputError(f"kernel_source {wanted!r} has no {part} rows; available: {have}")
    if not kernels:
        raise InputError(f"no {part} rows match the model's shapes (and the GPUs per instance)")
    curves = {k: c for k in kernels if (c := curve_of(k)) is not None}
    if not curves:
        where = "" if work_range is None else f" {work_range[0]:g}-{work_range[1]:g}"
        raise InputError(
            f"no {part} kernel has measured rows covering the fit range{where} "
            f"(kernels: {', '.join(sorted(kernels)) or 'none'})"
        )
    names = list(curves)
    rel = dict(zip(names, _relative_times([curves[k] for k in names]), strict=True))
    good = [k for k in names if not is_degenerate(curves[k])]
    warnings: list[str] = []
    if wanted is not None:
        kernel, reason = wanted, "given"
        if wanted not in curves:
            raise InputError(f"kernel_source {wanted!r} does not cover the {part} work range")
    elif good:
        kernel = min(good, key=rel.__getitem__)
        reason = "fastest" if len(good) > 1 else "only"
    else:
        kernel, reason = min(names, key=rel.__getitem__), "fallback"
    if is_degenerate(curves[kernel]):
        c = curves[kernel]
        warnings.append(
            f"{part}: kernel {kernel} is a flat floor (time grows {c.growth:.2g}x over "
            f"{c.work_ratio:.0f}x work): a fit on it measures overhead, not work"
        )
    passed = [k for k in names if k != kernel and is_degenerate(curves[k])]
    if passed and reason != "given":
        warnings.append(f"{part}: flat-floor kernel(s) {', '.join(passed)} not used")
    base = rel[kernel]
    candidates = [
        {
            "kernel": k,
            "degenerate": is_degenerate(curves[k]),
            "growth": curves[k].growth,
            "work_ratio": curves[k].work_ratio,
            "rows": rows_of(k) if rows_of is not None else None,
            "relative_time": rel[k] / base if math.isfinite(base) and base > 0 else None,
        }
        for k in sorted(names, key=rel.__getitem__)
    ]
    return KernelChoice(kernel=kernel, reason=reason, candidates=candidates, warnings=warnings)
