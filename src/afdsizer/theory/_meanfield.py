"""Mean-field provisioning rule: Λ(r), r_A, r_C, r_peak, r* and the regime (docs/design.md §4).

Under the mean-field view every Attention worker carries the load B·θ, so one overlapped decode
step lasts

    τ(r) = max(t_A, t_C(r), t_F(r)),   t_A = α_A + β_A·B·θ,
    t_C(r) = α_C + β_C·B + γ_C·r·B,    t_F(r) = α_F + β_F·r·B,

and the throughput per instance is Λ(r) = r·B / ((r + 1)·τ(r)).

Each of the three terms is a line a + b·r in r (b = 0 for Attention, and for communication when
γ_C = 0). With instance weights w_A, w_F (1 and 1 for "per instance", the hourly prices for "per
dollar") the objective's reciprocal is

    (w_A + w_F/r)·τ(r) = max over lines of (w_A + w_F/r)·(a + b·r),

a maximum of functions convex in r > 0, hence convex: the objective is unimodal in r and its
maximiser is either one line's own optimum sqrt(w_F·a / (w_A·b)) or a point where two lines cross.
That is the closed form r* = max{r_A, r_C, r_peak} of the paper, generalised to γ_C > 0 and to
prices.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients
from afdsizer.theory._validate import check_batch, check_prices, check_theta

__all__ = [
    "MeanFieldRule",
    "Regime",
    "mean_field_rule",
    "step_time_mean_field_s",
    "throughput_mean_field",
]

Regime = Literal["attention", "communication", "ffn"]
"""Which term binds at the optimum: Attention, communication or FFN (docs/design.md §4)."""

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MeanFieldRule:
    """The mean-field rule at one batch size B.

    Attributes
    ----------
    batch : int
        B, slots per Attention instance.
    theta_tokens : float
        θ, mean slot load, tokens.
    t_attn_s : float
        t_A = α_A + β_A·B·θ, Attention time per step, s.
    t_comm_fixed_s : float
        α_C + β_C·B, the part of t_C that does not grow with r, s.
    r_attention : float
        r_A, where the growing terms (t_F, and t_C when γ_C > 0) first reach t_A:
        (t_A − α_F)/(β_F·B) when γ_C = 0. May be negative (FFN slower than Attention at any r).
    r_communication : float
        r_C. With γ_C = 0: (t_C − α_F)/(β_F·B), where t_F reaches the flat t_C (may be
        negative). With γ_C > 0: the ratio at which t_F overtakes the growing t_C, or +inf
        when it never does; it then informs but does not enter the maximum (see Notes).
    r_peak : float
        The optimum of the growing terms alone: sqrt(α_F/(β_F·B)) when γ_C = 0 and instances
        are weighted equally; sqrt(w_F·α_F/(w_A·β_F·B)) with prices.
    r_star : float
        r* = max{r_A, r_C, r_peak} (γ_C = 0) or max{r_A, r_peak} (γ_C > 0): the exact
        maximiser of the objective over real r > 0.
    regime : {"attention", "communication", "ffn"}
        The term that binds just below r*: the one whose balance point or peak is r*.

    Notes
    -----
    With γ_C > 0 communication grows with r like the FFN, so it is one of the growing lines: its
    effect is in r_peak, which is then the optimum of max(t_C(r), t_F(r)) and may be the
    communication line's own peak sqrt(w_F·(α_C + β_C·B)/(w_A·γ_C·B)) or the crossing r_C.
    """

    batch: int
    theta_tokens: float
    t_attn_s: float
    t_comm_fixed_s: float
    r_attention: float
    r_communication: float
    r_peak: float
    r_star: float
    regime: Regime


def step_time_mean_field_s(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    batch: float | npt.ArrayLike,
    ratio: float | npt.ArrayLike,
) -> FloatArray:
    """Mean-field step time τ(r) = max(t_A, t_C(r), t_F(r)), s (docs/design.md §2).

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β, γ of Attention, communication and FFN.
    theta_tokens : float
        θ, mean slot load, tokens.
    batch : float or array-like
        B, slots per Attention instance; broadcast against ``ratio``.
    ratio : float or array-like
        r, Attention instances per FFN instance (real values allowed).

    Returns
    -------
    ndarray of float
        τ in seconds, shape of ``broadcast(batch, ratio)``.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-3, beta_ffn_s_per_token=1e-5)
    >>> float(step_time_mean_field_s(c, theta_tokens=1000.0, batch=100, ratio=1.0))
    0.006
    """
    check_theta(theta_tokens)
    B = np.asarray(batch, dtype=np.float64)
    r = np.asarray(ratio, dtype=np.float64)
    t_attn = coefficients.attention_time_s(B * theta_tokens)
    t_comm = coefficients.comm_time_s(B, r)
    t_ffn = coefficients.ffn_time_s(r * B)
    return np.asarray(np.maximum(np.maximum(t_attn, t_comm), t_ffn), dtype=np.float64)


def throughput_mean_field(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    batch: float | npt.ArrayLike,
    ratio: float | npt.ArrayLike,
) -> FloatArray:
    """Mean-field throughput per instance Λ(r) = r·B / ((r + 1)·τ(r)), tokens/s per instance.

    Parameters are those of :func:`step_time_mean_field_s`; vectorised over ``batch`` and
    ``ratio``.

    Returns
    -------
    ndarray of float
        Λ in tokens per second per instance (Attention and FFN instances both counted).

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-3, beta_ffn_s_per_token=1e-5)
    >>> round(float(throughput_mean_field(c, theta_tokens=1000.0, batch=100, ratio=1.0)), 3)
    8333.333
    """
    B = np.asarray(batch, dtype=np.float64)
    r = np.asarray(ratio, dtype=np.float64)
    tau = step_time_mean_field_s(coefficients, theta_tokens=theta_tokens, batch=B, ratio=r)
    return np.asarray(r * B / ((r + 1.0) * tau), dtype=np.float64)


@dataclasses.dataclass(frozen=True, slots=True)
class _Line:
    """One step-time term a + b·r (s) and the regime it names."""

    a_s: float
    b_s: float
    name: Regime


def _inverse_objective(r: float, lines: list[_Line], w_attn: float, w_ffn: float) -> float:
    """(w_A + w_F/r)·τ(r): proportional to 1/objective, convex in r > 0."""
    return (w_attn + w_ffn / r) * max(line.a_s + line.b_s * r for line in lines)


def _growing_peak(lines: list[_Line], w_attn: float, w_ffn: float) -> tuple[float, Regime]:
    """Minimiser of (w_A + w_F/r)·max(growing lines) and the line binding just below it.

    The function is convex, so its minimiser is a line's own optimum sqrt(w_F·a/(w_A·b)) or a
    crossing of two lines; among those candidates the smallest value wins.
    """
    candidates: list[tuple[float, Regime]] = []
    for line in lines:
        candidates.append((math.sqrt(w_ffn * line.a_s / (w_attn * line.b_s)), line.name))
    for i, first in enumerate(lines):
        for second in lines[i + 1 :]:
            if first.b_s != second.b_s:
                r_cross = (first.a_s - second.a_s) / (second.b_s - first.b_s)
                if r_cross > 0:
                    # Just below a crossing the flatter line is the larger one.
                    below = first if first.b_s < second.b_s else second
                    candidates.append((r_cross, below.name))
    return min(candidates, key=lambda c: (_inverse_objective(c[0], lines, w_attn, w_ffn), c[0]))


def _balance_point(level_s: float, growing: list[_Line]) -> float:
    """First r at which the growing envelope max(a + b·r) reaches ``level_s`` (may be < 0)."""
    return min((level_s - line.a_s) / line.b_s for line in growing)


def mean_field_rule(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    batch: int,
    price_attn_per_h: float | None = None,
    price_ffn_per_h: float | None = None,
) -> MeanFieldRule:
    """Closed-form mean-field optimum r* = max{r_A, r_C, r_peak} and its regime.

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β (and γ_C) of the three terms.
    theta_tokens : float
        θ, mean slot load, tokens. Must be > 0.
    batch : int
        B, slots per Attention instance. Must be >= 1.
    price_attn_per_h, price_ffn_per_h : float, optional
        Hourly prices of an Attention and an FFN instance (any currency). Given together, the
        objective is tokens per dollar, r·B/((r·p_A + p_F)·τ); omitted, it is throughput per
        instance Λ(r) (both weights 1).

    Returns
    -------
    MeanFieldRule

    Raises
    ------
    InputError
        θ <= 0, B < 1 or a price that is not > 0 (or only one price given).

    Notes
    -----
    docs/design.md §4: r_A = (t_A − α_F)/(β_F·B), r_C = (t_C − α_F)/(β_F·B), r_peak =
    sqrt(α_F/(β_F·B)); the largest names the regime. The module docstring shows why the same
    candidates stay exact with γ_C > 0 and with prices.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> rule = mean_field_rule(c, theta_tokens=1000.0, batch=100)
    >>> rule.regime, round(rule.r_star, 3)
    ('attention', 15.0)
    """
    check_theta(theta_tokens)
    B = check_batch(batch)
    w_attn, w_ffn = check_prices(price_attn_per_h, price_ffn_per_h)
    t_attn = coefficients.attention_time_s(B * theta_tokens)
    t_comm_fixed = coefficients.comm_time_s(B, 0.0)
    gamma = coefficients.gamma_comm_s_per_token
    ffn = _Line(coefficients.alpha_ffn_s, coefficients.beta_ffn_s_per_token * B, "ffn")
    comm = _Line(t_comm_fixed, gamma * B, "communication")
    growing = [ffn, comm] if gamma > 0 else [ffn]

    r_attention = _balance_point(t_attn, growing)
    if gamma > 0:
        slope_gap = ffn.b_s - comm.b_s
        r_communication = (comm.a_s - ffn.a_s) / slope_gap if slope_gap > 0 else math.inf
        ceilings: list[tuple[float, Regime]] = [(r_attention, "attention")]
    else:
        r_communication = _balance_point(t_comm_fixed, growing)
        ceilings = [(r_attention, "attention"), (r_communication, "communication")]
    r_peak, peak_regime = _growing_peak(growing, w_attn, w_ffn)

    # Ties go to the ceiling listed first (Attention, then communication), as in the paper.
    r_star, regime = r_peak, peak_regime
    for r_ceiling, name in reversed(ceilings):
        if r_ceiling >= r_star:
            r_star, regime = r_ceiling, name
    return MeanFieldRule(
        batch=B,
        theta_tokens=float(theta_tokens),
        t_attn_s=t_attn,
        t_comm_fixed_s=t_comm_fixed,
        r_attention=r_attention,
        r_communication=r_communication,
        r_peak=r_peak,
        r_star=r_star,
        regime=regime,
    )
