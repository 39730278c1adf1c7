"""The knee of the simulated FFN idle curve: where the FFN catches up with Attention (design §8).

In the mean-field model the FFN idle fraction is 1 − t_F(r)/t_A, linear in r, until the FFN time
reaches the Attention time at r_A; from there it stays at its floor. The simulated curve is the same
shape smoothed by the barrier, so a hinge fitted by least squares,

    f(r) = c + s·(r − k)  for r < k,     f(r) = c  for r >= k,

locates the knee k: exactly r_A on a mean-field curve, and a well-defined point even where the
throughput curve is flat and its arg-max is decided by noise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError

__all__ = ["Knee", "find_knee"]

KNEE_GRID_POINTS = 4001
"""Candidate knee positions scanned between the smallest and largest ratio."""
MIN_DROP_FRAC = 0.02
"""An idle curve that falls by less than this (absolute fraction) has no knee in the range."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Knee:
    """A hinge fitted to an idle-fraction curve.

    Parameters
    ----------
    ratio : float or None
        k, the knee (continuous r); None when the curve does not fall (no knee in range).
    floor : float
        c, the fitted floor of the idle fraction.
    slope_per_ratio : float
        s, the fitted slope left of the knee (fraction per unit r; negative for a falling curve).
    at_edge : bool
        True when k is the first or last ratio of the range (the knee may lie outside it).
    rms_residual : float
        Root-mean-square residual of the fit, fraction.
    """

    ratio: float | None
    floor: float
    slope_per_ratio: float
    at_edge: bool
    rms_residual: float


def _fit_hinges(
    r: npt.NDArray[np.float64], f: npt.NDArray[np.float64], knees: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Least squares of f = c + s·min(r − k, 0) for every candidate k at once: (sse, c, s)."""
    # For a fixed knee the hinge is linear in (c, s); solve the 2×2 normal equations per k.
    x = np.minimum(r[None, :] - knees[:, None], 0.0)  # (G, n)
    n = r.size
    sx, sxx = x.sum(axis=1), (x * x).sum(axis=1)
    sy, sxy = f.sum(), x @ f
    det = n * sxx - sx * sx
    safe = np.where(det > 0, det, 1.0)
    slope = np.where(det > 0, (n * sxy - sx * sy) / safe, 0.0)
    floor = (sy - slope * sx) / n
    resid = floor[:, None] + slope[:, None] * x - f[None, :]
    return (resid * resid).sum(axis=1), floor, slope


def find_knee(
    ratios: npt.ArrayLike, idle_frac: npt.ArrayLike, *, grid_points: int = KNEE_GRID_POINTS
) -> Knee:
    """Fit the hinge f(r) = c + s·min(r − k, 0) to an idle curve and return the knee k.

    Parameters
    ----------
    ratios : array-like of float, shape (n,)
        Ratios r at which the idle fraction was measured (any spacing, n >= 3).
    idle_frac : array-like of float, shape (n,)
        Idle fraction at each ratio (e.g. the simulated FFN idle fraction).
    grid_points : int
        Candidate knees scanned; the best by squared error wins.

    Returns
    -------
    Knee

    Raises
    ------
    InputError
        Fewer than 3 points, mismatched shapes or non-finite values.

    Examples
    --------
    >>> r = np.arange(1, 21, dtype=float)
    >>> round(find_knee(r, np.maximum(0.5 - 0.05 * r, 0.0)).ratio, 2)
    10.0
    """
    r = np.asarray(ratios, dtype=np.float64)
    f = np.asarray(idle_frac, dtype=np.float64)
    if r.shape != f.shape or r.ndim != 1 or r.size < 3:
        raise InputError(
            f"ratios and idle_frac must be 1-D of equal length >= 3, got {r.shape} and {f.shape}"
        )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(f))):
        raise InputError("ratios and idle_frac must be finite")
    order = np.argsort(r)
    r, f = r[order], f[order]
    if float(f.max() - f.min()) < MIN_DROP_FRAC or f[0] - f[-1] < MIN_DROP_FRAC:
        floor = float(f.mean())
        rms = float(np.sqrt(np.mean((f - floor) ** 2)))
        return Knee(ratio=None, floor=floor, slope_per_ratio=0.0, at_edge=False, rms_residual=rms)
    knees = np.linspace(r[0], r[-1], grid_points)
    sse_all, floors, slopes = _fit_hinges(r, f, knees)
    j = int(np.argmin(sse_all))
    sse, k, c, s = float(sse_all[j]), float(knees[j]), float(floors[j]), float(slopes[j])
    edge = bool(np.isclose(k, r[0]) or np.isclose(k, r[-1]))
    return Knee(
        ratio=k, floor=c, slope_per_ratio=s, at_edge=edge, rms_residual=float(np.sqrt(sse / r.size))
    )
