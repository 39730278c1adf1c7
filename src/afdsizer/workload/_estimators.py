"""θ and σ² of one slot's token load from joint (P, D) pairs (docs/design.md §3).

A slot serves requests back to back; a request with prompt length P and decode length D holds
the slot for D steps and attends to P + k KV tokens at its k-th step (k = 0 … D−1). By the
renewal–reward theorem the long-run mean and variance of the slot load are

    θ  = E[a] / E[D],               a = Σ_{k<D} (P+k)   = D·m,            m = P + (D−1)/2
    σ² = E[b] / E[D] − θ²,          b = Σ_{k<D} (P+k)²  = D·m² + D(D²−1)/12

(m is the request's mean load, D(D²−1)/12 the spread of D consecutive integers around it).
The estimator replaces expectations by trace means: θ̂ = Σa / ΣD, a ratio estimator.

Everything is computed from a handful of *sufficient sums* (:class:`SlotLoadSums`), so the same
code serves an in-memory array and a streamed 10-million-row file (where polars computes the
sums). The sums are taken around a shift c close to θ (a_c = a − c·D), which keeps the
variance terms free of catastrophic cancellation; c only changes rounding, never the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special  # the Normal quantile; scipy.stats costs ~0.5 s to import

from afdsizer.errors import InputError

__all__ = [
    "DEFAULT_N_BOOTSTRAP",
    "CiMethod",
    "SlotLoadEstimate",
    "SlotLoadSums",
    "estimate_from_sums",
    "estimate_slot_load",
    "slot_load_sum_exprs",
    "slot_load_sums",
]

CiMethod = Literal["delta", "bootstrap"]
"""How the confidence interval of θ is computed."""
DEFAULT_N_BOOTSTRAP = 1000
"""Bootstrap replicates of θ̂ by default."""
_BOOTSTRAP_CHUNK = 64
"""Replicates drawn at once (bounds memory at 64·n indices)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotLoadEstimate:
    """θ and σ of one slot's stationary token load, with a confidence interval for θ.

    Parameters
    ----------
    theta_tokens : float
        θ, long-run mean KV tokens one slot attends to per decode step, tokens.
    theta_ci_tokens : tuple of float
        (low, high) confidence interval of θ, tokens (NaN with a single request).
    theta_se_tokens : float
        Standard error of θ̂ (delta method, or the bootstrap replicates' standard deviation).
    sigma2_tokens2 : float
        σ², stationary variance of one slot's load, tokens².
    slot_load_std_tokens : float
        σ = sqrt(σ²), tokens.
    n_requests : int
        Requests (P, D) pairs the estimate uses.
    confidence : float
        Coverage of ``theta_ci_tokens``, e.g. 0.95.
    ci_method : {"delta", "bootstrap"}
        How the interval was computed.
    """

    theta_tokens: float
    theta_ci_tokens: tuple[float, float]
    theta_se_tokens: float
    sigma2_tokens2: float
    slot_load_std_tokens: float
    n_requests: int
    confidence: float
    ci_method: CiMethod


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotLoadSums:
    """Sufficient sums for θ̂, σ̂² and the delta-method interval, taken around a shift c.

    With a_c = a − c·D = D·(m − c) and b_c = D·(m − c)² + D(D²−1)/12 (module docstring):
    ``sum_d`` = ΣD, ``sum_a`` = Σa_c, ``sum_b`` = Σb_c, ``sum_aa`` = Σa_c², ``sum_ad`` = Σa_c·D,
    ``sum_dd`` = ΣD², all over ``n`` requests, in float64 (tokens, tokens², ...).
    Sums with the same shift add up (:meth:`merge`), so windows combine into the whole.
    """

    shift_tokens: float
    n: int
    sum_d: float
    sum_a: float
    sum_b: float
    sum_aa: float
    sum_ad: float
    sum_dd: float

    def merge(self, other: SlotLoadSums) -> SlotLoadSums:
        """Sums over the union of two disjoint sets of requests (same shift)."""
        if other.shift_tokens != self.shift_tokens:
            raise InputError(
                f"sums must share their shift, got {self.shift_tokens} and {other.shift_tokens}"
            )
        return SlotLoadSums(
            shift_tokens=self.shift_tokens,
            n=self.n + other.n,
            sum_d=self.sum_d + other.sum_d,
            sum_a=self.sum_a + other.sum_a,
            sum_b=self.sum_b + other.sum_b,
            sum_aa=self.sum_aa + other.sum_aa,
            sum_ad=self.sum_ad + other.sum_ad,
            sum_dd=self.sum_dd + other.sum_dd,
        )


_SUM_FIELDS = ("n", "sum_d", "sum_a", "sum_b", "sum_aa", "sum_ad", "sum_dd")


def slot_load_sums(
    prompt_tokens: npt.NDArray[np.float64],
    decode_tokens: npt.NDArray[np.float64],
    *,
    shift_tokens: float,
) -> SlotLoadSums:
    """Sufficient sums of (P, D) arrays around ``shift_tokens`` (numpy, float64, pairwise sums)."""
    P = np.asarray(prompt_tokens, dtype=np.float64)
    D = np.asarray(decode_tokens, dtype=np.float64)
    dev = P + (D - 1.0) / 2.0 - shift_tokens  # m − c
    a = D * dev
    b = D * dev * dev + D * (D * D - 1.0) / 12.0
    return SlotLoadSums(
        shift_tokens=shift_tokens,
        n=int(P.size),
        sum_d=float(D.sum()),
        sum_a=float(a.sum()),
        sum_b=float(b.sum()),
        sum_aa=float((a * a).sum()),
        sum_ad=float((a * D).sum()),
        sum_dd=float((D * D).sum()),
    )


def slot_load_sum_exprs(prompt: str, decode: str, *, shift_tokens: float) -> list[pl.Expr]:
    """The same sums as polars aggregations over columns ``prompt`` and ``decode`` (Float64).

    Used by the streaming summary; the result columns are named like the
    :class:`SlotLoadSums` fields (``n``, ``sum_d``, ...).
    """
    D = pl.col(decode)
    dev = pl.col(prompt) + (D - 1.0) / 2.0 - shift_tokens
    a = D * dev
    b = D * dev * dev + D * (D * D - 1.0) / 12.0
    return [
        D.count().alias("n"),
        D.sum().alias("sum_d"),
        a.sum().alias("sum_a"),
        b.sum().alias("sum_b"),
        (a * a).sum().alias("sum_aa"),
        (a * D).sum().alias("sum_ad"),
        (D * D).sum().alias("sum_dd"),
    ]


def sums_from_row(row: dict[str, float | int | None], *, shift_tokens: float) -> SlotLoadSums:
    """Build :class:`SlotLoadSums` from one result row of :func:`slot_load_sum_exprs`."""
    values = {k: float(row[k] or 0.0) for k in _SUM_FIELDS}
    return SlotLoadSums(
        shift_tokens=shift_tokens,
        n=int(values["n"]),
        sum_d=values["sum_d"],
        sum_a=values["sum_a"],
        sum_b=values["sum_b"],
        sum_aa=values["sum_aa"],
        sum_ad=values["sum_ad"],
        sum_dd=values["sum_dd"],
    )


def estimate_from_sums(sums: SlotLoadSums, *, confidence: float = 0.95) -> SlotLoadEstimate:
    """θ̂, σ̂² and the delta-method interval of θ from sufficient sums.

    Notes
    -----
    θ̂ = c + Σa_c/ΣD. σ̂² = Σb_c/ΣD − (θ̂ − c)², clipped at 0 against rounding.
    Delta method for the ratio of means: Var(θ̂) ≈ s_r² / (n·D̄²) with residuals
    r_i = a_i − θ̂·D_i and s_r² = Σr_i²/(n − 1); expanded in the sums around c with
    δ = θ̂ − c: Σr² = Σa_c² − 2δ·Σa_c·D + δ²·ΣD².
    """
    _check_confidence(confidence)
    if sums.n < 1 or sums.sum_d <= 0:
        raise InputError(f"θ needs at least one request with D >= 1 token, got {sums.n}")
    delta = sums.sum_a / sums.sum_d
    theta = sums.shift_tokens + delta
    sigma2 = max(sums.sum_b / sums.sum_d - delta * delta, 0.0)
    if sums.n >= 2:
        resid_ss = max(sums.sum_aa - 2.0 * delta * sums.sum_ad + delta * delta * sums.sum_dd, 0.0)
        mean_d = sums.sum_d / sums.n
        se = math.sqrt(resid_ss / (sums.n - 1) / sums.n) / mean_d
        z = float(special.ndtri(0.5 + confidence / 2.0))
        ci = (theta - z * se, theta + z * se)
    else:
        se, ci = math.nan, (math.nan, math.nan)
    return SlotLoadEstimate(
        theta_tokens=theta,
        theta_ci_tokens=ci,
        theta_se_tokens=se,
        sigma2_tokens2=sigma2,
        slot_load_std_tokens=math.sqrt(sigma2),
        n_requests=sums.n,
        confidence=confidence,
        ci_method="delta",
    )


def estimate_slot_load(
    prompt_tokens: npt.ArrayLike,
    decode_tokens: npt.ArrayLike,
    *,
    ci: CiMethod = "delta",
    confidence: float = 0.95,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int = 0,
) -> SlotLoadEstimate:
    """Estimate θ and σ of one slot's token load from joint (P, D) pairs.

    Parameters
    ----------
    prompt_tokens : array-like of int, shape (n,)
        P, prompt length of each request, tokens, >= 0.
    decode_tokens : array-like of int, shape (n,)
        D, decode length of the same requests, tokens, >= 1. Pairs are kept together: P and D
        are correlated in real traces and θ depends on their joint law.
    ci : {"delta", "bootstrap"}, default "delta"
        Delta method for the ratio estimator, or a seeded percentile bootstrap over requests.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    n_bootstrap : int, default 1000
        Bootstrap replicates (``ci="bootstrap"`` only), >= 10.
    seed : int, default 0
        Seed of the bootstrap resampling.

    Returns
    -------
    SlotLoadEstimate

    Raises
    ------
    InputError
        Empty or mismatched arrays, a negative/fractional P, D < 1, or a bad option.

    Notes
    -----
    θ = E[P·D + D(D−1)/2] / E[D] and σ² = E[Σ_{k<D}(P+k)²]/E[D] − θ² (docs/design.md §3; step k of a
    request attends to P + k tokens). Sums are float64 around a shift near θ (module docstring).

    Examples
    --------
    >>> est = estimate_slot_load([100, 100], [1, 3])
    >>> est.theta_tokens  # (100·1 + 0 + 100·3 + 3) / 4
    100.75
    """
    P, D = _validated_pairs(prompt_tokens, decode_tokens)
    _check_confidence(confidence)
    if ci not in ("delta", "bootstrap"):
        raise InputError(f"ci must be 'delta' or 'bootstrap', got {ci!r}")
    rough = float(np.sum(D * (P + (D - 1.0) / 2.0)) / np.sum(D))
    estimate = estimate_from_sums(slot_load_sums(P, D, shift_tokens=rough), confidence=confidence)
    if ci == "delta":
        return estimate
    if n_bootstrap < 10:
        raise InputError(f"n_bootstrap must be >= 10 replicates, got {n_bootstrap}")
    replicates = _bootstrap_thetas(P, D, n_bootstrap=n_bootstrap, seed=seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return SlotLoadEstimate(
        theta_tokens=estimate.theta_tokens,
        theta_ci_tokens=(float(low), float(high)),
        theta_se_tokens=float(np.std(replicates, ddof=1)),
        sigma2_tokens2=estimate.sigma2_tokens2,
        slot_load_std_tokens=estimate.slot_load_std_tokens,
        n_requests=estimate.n_requests,
        confidence=confidence,
        ci_method="bootstrap",
    )


def _bootstrap_thetas(
    P: npt.NDArray[np.float64], D: npt.NDArray[np.float64], *, n_bootstrap: int, seed: int
) -> npt.NDArray[np.float64]:
    """θ̂ on ``n_bootstrap`` resamples of the requests (pairs kept together)."""
    rng = np.random.default_rng(seed)
    a = D * (P + (D - 1.0) / 2.0)
    n = P.size
    out = np.empty(n_bootstrap)
    for start in range(0, n_bootstrap, _BOOTSTRAP_CHUNK):
        stop = min(start + _BOOTSTRAP_CHUNK, n_bootstrap)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = a[idx].sum(axis=1) / D[idx].sum(axis=1)
    return out


def _validated_pairs(
    prompt_tokens: npt.ArrayLike, decode_tokens: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    try:
        P = np.asarray(prompt_tokens, dtype=np.float64)
        D = np.asarray(decode_tokens, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("prompt_tokens and decode_tokens must be numeric arrays") from None
    if P.ndim != 1 or P.shape != D.shape:
        raise InputError(
            "prompt_tokens and decode_tokens must be 1-D of equal length, "
            f"got shapes {P.shape} and {D.shape}"
        )
    if P.size == 0:
        raise InputError("θ needs at least one (P, D) pair, got 0")
    for name, x, minimum in (("prompt_tokens", P, 0), ("decode_tokens", D, 1)):
        bad = ~np.isfinite(x) | (x < minimum) | (x != np.floor(x))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{name} must be whole numbers of tokens >= {minimum}, got {x[i]!r} at index {i}"
            )
    return P, D


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
