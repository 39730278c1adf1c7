"""FFN time as experts, not a line: the activated-experts curve, linearised (docs/design.md §10).

One fused-MoE call on one GPU of an FFN instance (expert parallelism over ``ep`` GPUs, E/ep
local experts) for a batch of N tokens is modelled as

    t(N) = t0 + ((A(N)·w)^p + (N·c)^p)^(1/p),    A(N) = (E/ep)·(1 − (1 − k/E)^N),

where A(N) is the expected number of local experts a batch of N tokens activates under uniform
top-k routing (E·(1 − (1 − k/E)^N) over the whole instance), w the time to stream one expert's
weights (the memory-bound side), c the compute time per token (the compute-bound side), t0 a
fixed cost and p ≥ 1 the sharpness of the memory→compute transition (p = 1 adds the two,
p → ∞ is the roofline's max). A dense GEMM part is the same curve with E = k = 1 (one "expert",
always active). Power-law routing is fitted on its own rows (``--moe-routing``): its busiest GPU
carries more tokens, which c absorbs.

The theory wants an affine t_F = α_F + β_F·N. :func:`linearise_ffn` gives the tangent (or a
secant) of the curve *at the operating point* N = r·B, so the rule sees the slope where it
operates; ``size`` re-evaluates it at the N it recommends until the two agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError

__all__ = [
    "ExpertCurve",
    "FfnCurve",
    "LinearisationMethod",
    "fit_expert_curve",
    "linearise_ffn",
]

LinearisationMethod = Literal["tangent", "secant"]

MIN_SHARPNESS = 1.0
"""p = 1: memory and compute times add (no overlap)."""
MAX_SHARPNESS = 4.0
"""p = 4 is within 19% of the hard max; sharper fits only chase noise."""
SECANT_SPAN = 2.0
"""The secant at N runs from N/SECANT_SPAN to N·SECANT_SPAN (a factor 4 of tokens)."""
_MIN_COEFF_S = 1e-12
"""Floor for α_F and β_F from a linearisation (CostCoefficients needs > 0)."""

_Array = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExpertCurve:
    """t(N) of one FFN part, summed over the ``calls`` per decode step (module formula).

    Parameters
    ----------
    part : str
        ``"moe"`` (fused-MoE kernel) or ``"ffn_gemm"`` (dense layers and shared experts).
    num_experts, experts_per_token : int
        E and k of the routing (1 and 1 for a dense GEMM part).
    local_experts : float
        E/ep, experts on one GPU.
    fixed_s : float
        t0, fixed time per call, s.
    expert_s : float
        w, time per activated local expert, s.
    token_s : float
        c, time per token of the batch N, s/token.
    sharpness : float
        p in [1, 4].
    calls : float
        Calls per decode step (MoE layers; 1 when the times are already per step).
    """

    part: str
    num_experts: int
    experts_per_token: int
    local_experts: float
    fixed_s: float
    expert_s: float
    token_s: float
    sharpness: float
    calls: float = 1.0

    def active_experts(self, tokens: npt.ArrayLike) -> _Array:
        """A(N): expected local experts a batch of N tokens activates (uniform routing)."""
        N = np.asarray(tokens, dtype=np.float64)
        E, k = self.num_experts, self.experts_per_token
        out: _Array = self.local_experts * (1.0 - (1.0 - k / E) ** N)
        return out

    def for_rank(self, share: float) -> ExpertCurve:
        """The curve moved to one EP rank holding ``share`` of the experts: its local experts
        and its per-token work scale by ``share``."""
        return dataclasses.replace(
            self, local_experts=self.local_experts * share, token_s=self.token_s * share
        )

    def time_s(self, tokens: npt.ArrayLike) -> _Array:
        """Time per decode step for N tokens, s (all ``calls``)."""
        N = np.asarray(tokens, dtype=np.float64)
        return self.calls * _smooth_max_time(
            N, self.active_experts(N), self.fixed_s, self.expert_s, self.token_s, self.sharpness
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (profile.yaml)."""
        return dataclasses.asdict(self)


def _smooth_max_time(
    N: _Array, A: _Array, t0: float, w: float, c: float, p: float
) -> npt.NDArray[np.float64]:
    a, b = A * w, N * c
    hi = np.maximum(np.maximum(a, b), 1e-300)  # scale before the power: no overflow
    out: _Array = t0 + hi * ((a / hi) ** p + (b / hi) ** p) ** (1.0 / p)
    return out


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FfnCurve:
    """t_F(N) per decode step: the sum of its parts' curves.

    Parameters
    ----------
    terms : tuple of ExpertCurve
        The fused-MoE part and the GEMM part (dense layers, shared experts), as present.
    fitted_tokens : (float, float)
        Token range [N_min, N_max] of the rows the curves were fitted on.
    """

    terms: tuple[ExpertCurve, ...]
    fitted_tokens: tuple[float, float]

    def time_s(self, tokens: npt.ArrayLike) -> _Array:
        """t_F(N), s."""
        N = np.asarray(tokens, dtype=np.float64)
        total = np.zeros_like(N)
        for term in self.terms:
            total = total + term.time_s(N)
        return total

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (profile.yaml ``ffn_curve``)."""
        return {
            "terms": [t.to_dict() for t in self.terms],
            "fitted_tokens": [float(v) for v in self.fitted_tokens],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "ffn_curve") -> FfnCurve:
        """Read :meth:`to_dict`'s output back.

        Raises
        ------
        InputError
            A field is missing or not a number.
        """
        try:
            terms = tuple(
                ExpertCurve(
                    part=str(t["part"]),
                    num_experts=int(t["num_experts"]),
                    experts_per_token=int(t["experts_per_token"]),
                    local_experts=float(t["local_experts"]),
                    fixed_s=float(t["fixed_s"]),
                    expert_s=float(t["expert_s"]),
                    token_s=float(t["token_s"]),
                    sharpness=float(t["sharpness"]),
                    calls=float(t.get("calls", 1.0)),
                )
                for t in data["terms"]
            )
            lo, hi = (float(v) for v in data["fitted_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source} is not a valid FFN curve ({exc!r})") from None
        if not terms:
            raise InputError(f"{source} has no terms")
        return cls(terms=terms, fitted_tokens=(lo, hi))


def _initial_guesses(N: _Array, t: _Array, A: _Array) -> list[_Array]:
    t_min = float(t.min())
    tokens = N
    upper = tokens >= np.median(tokens)
    slope = t_min / float(N.max())
    if upper.sum() >= 2:
        slope = float(np.polyfit(N[upper], t[upper], 1)[0])
    guesses = []
    for f0 in (0.1, 0.5):
        for fc in (0.5, 1.5):
            t0 = f0 * t_min
            w = max(t_min - t0, 1e-9) / max(float(A.max()), 1e-9)
            c = max(fc * slope, 1e-15)
            guesses.append(np.array([np.log(t0), np.log(w), np.log(c), 0.0]))
    return guesses


def _sharpness(q: float) -> float:
    return float(MIN_SHARPNESS + (MAX_SHARPNESS - MIN_SHARPNESS) / (1.0 + np.exp(-q)))


def fit_expert_curve(
    tokens: npt.ArrayLike,
    time_s: npt.ArrayLike,
    *,
    part: str,
    num_experts: int,
    experts_per_token: int,
    local_experts: float,
    calls: float = 1.0,
) -> tuple[ExpertCurve, _Array]:
    """Least-squares fit (relative error) of the curve to measured per-call times.

    Parameters
    ----------
    tokens : array-like of shape (n,)
        N of each measured row, tokens.
    time_s : array-like of shape (n,)
        Time per call, s (per layer; the curve multiplies by ``calls``).
    part, num_experts, experts_per_token, local_experts, calls
        As in :class:`ExpertCurve`.

    Returns
    -------
    curve : ExpertCurve
    rel_error : ndarray of shape (n,)
        |curve − measured| / measured per row (per call).

    Raises
    ------
    InputError
        Fewer than four distinct token counts (the curve has four parameters).

    Examples
    --------
    >>> N = np.geomspace(1, 16384, 24).round()
    >>> E, k = 128, 8
    >>> A = E * (1 - (1 - k / E) ** N)
    >>> t = 2e-5 + A * 2e-6 + N * 1e-7
    >>> curve, rel = fit_expert_curve(N, t, part="moe", num_experts=E, experts_per_token=k,
    ...                               local_experts=E)
    >>> bool(rel.max() < 0.02)
    True
    """
    from scipy.optimize import least_squares  # imported when fitting: keeps start-up fast

    N = np.asarray(tokens, dtype=np.float64)
    T = np.asarray(time_s, dtype=np.float64)
    distinct = np.unique(N).size
    if distinct < 4:
        raise InputError(f"{part} curve fit needs >= 4 distinct token counts, got {distinct}")
    shape = {"num_experts": num_experts, "experts_per_token": experts_per_token}
    probe = ExpertCurve(
        part=part,
        local_experts=local_experts,
        fixed_s=0,
        expert_s=0,
        token_s=0,
        sharpness=1,
        **shape,
    )
    A = probe.active_experts(N)

    def residual(x: _Array) -> _Array:
        t0, w, c = np.exp(x[:3])
        return _smooth_max_time(N, A, t0, w, c, _sharpness(x[3])) / T - 1.0

    best = None
    for x0 in _initial_guesses(N, T, A):
        sol = least_squares(residual, x0, method="trf")
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    t0, w, c = (float(v) for v in np.exp(best.x[:3]))
    curve = ExpertCurve(
        part=part,
        local_experts=float(local_experts),
        fixed_s=t0,
        expert_s=w,
        token_s=c,
        sharpness=float(_sharpness(best.x[3])),
        calls=float(calls),
        **shape,
    )
    return curve, np.abs(residual(best.x))


def linearise_ffn(
    curve: FfnCurve | ExpertCurve,
    tokens: float,
    *,
    method: LinearisationMethod = "tangent",
    span: float = SECANT_SPAN,
) -> tuple[float, float]:
    """α_F, β_F of the line that stands for t_F near the operating point N.

    Parameters
    ----------
    curve : FfnCurve or ExpertCurve
        The fitted t_F(N) (per decode step).
    tokens : float
        N = r·B, FFN tokens per step at the operating point (> 0).
    method : {"tangent", "secant"}, default "tangent"
        Tangent at N (β_F = t_F'(N)), or the chord from N/span to N·span.
    span : float, default 2.0
        Secant half-width as a factor (> 1).

    Returns
    -------
    alpha_ffn_s, beta_ffn_s_per_token : float
        α_F = t_F(N) − β_F·N and β_F, both floored at 1e-12 so they form valid
        :class:`CostCoefficients`; the line passes through t_F(N).

    Raises
    ------
    InputError
        ``tokens`` <= 0, ``span`` <= 1 or an unknown method.

    Examples
    --------
    >>> term = ExpertCurve(part="ffn_gemm", num_experts=1, experts_per_token=1, local_experts=1,
    ...     fixed_s=1e-5, expert_s=1e-4, token_s=1e-7, sharpness=4.0)
    >>> a, b = linearise_ffn(term, 16384)  # compute-bound: slope c, intercept ~ t0
    >>> round(b * 1e7, 3), round(a * 1e5, 2)
    (1.0, 1.0)
    """
    if not tokens > 0:
        raise InputError(f"tokens must be > 0 (FFN batch N = r·B), got {tokens!r}")
    N = float(tokens)
    if method == "tangent":
        h = max(N * 1e-4, 1e-3)
        lo, hi = max(N - h, N / 2), N + h
    elif method == "secant":
        if not span > 1:
            raise InputError(f"span must be > 1, got {span!r}")
        lo, hi = N / span, N * span
    else:
        raise InputError(f"method must be tangent or secant, got {method!r}")
    t_lo, t_n, t_hi = (float(v) for v in curve.time_s(np.array([lo, N, hi])))
    beta = max((t_hi - t_lo) / (hi - lo), _MIN_COEFF_S)
    alpha = max(t_n - beta * N, _MIN_COEFF_S)
    return alpha, beta
