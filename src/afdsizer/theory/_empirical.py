"""Empirical barrier: exact order statistics of sampled worker loads instead of a normal (§4, §8).

The Gaussian barrier treats a worker's load L_w as Normal(B·θ, B·σ²). With heavy tails and small B
the sum of B slot loads is right-skewed, and the maximum over r workers grows faster with r than
μ + σ·m_r (docs/validation.md). Given n samples of the stationary law of L_w (from the trace:
:func:`afdsizer.workload.sample_worker_loads`), sorted as x_(1) <= … <= x_(n), the maximum of r
iid draws from their empirical law has

    P(max = x_(i)) = (i/n)^r − ((i−1)/n)^r,

so with t_i = α_A + β_A·x_(i) and G(r) = max(t_C(r), t_F(r)), exactly for that law,

    E[τ(r)] = Σ_i w_i(r)·max(G(r), t_i),     E[max_w t_A,w] = Σ_i w_i(r)·t_i.

This module holds the two step-time models the sizing search runs on — Gaussian and empirical —
behind one private interface (:class:`_StepModel`), and the public :func:`expected_max_empirical`
and :func:`expected_step_time_empirical_s`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.theory._barrier import (
    _expected_max_std_normal_fast,
    expected_max_above_floor,
)
from afdsizer.theory._meanfield import MeanFieldRule, mean_field_rule

__all__ = [
    "BarrierCurve",
    "BarrierModel",
    "WorkerLoadSamples",
    "barrier_curve",
    "expected_max_empirical",
    "expected_step_time_empirical_s",
]

FloatArray = npt.NDArray[np.float64]

BarrierModel = Literal["gaussian", "empirical"]
"""The law of a worker's load behind E[max_w t_A,w]: Normal(B·θ, B·σ²), or sampled loads."""

WorkerLoadSamples = npt.ArrayLike | Callable[[int], npt.ArrayLike]
"""Samples of L_w (tokens) at the given B, or a function B → samples (for joint sizing)."""

_MAX_WORK_ELEMENTS = 4_000_000
"""Rows of r are processed in chunks so the (ratios × samples) work array stays ~32 MB."""


def _sorted_loads(worker_loads_tokens: npt.ArrayLike) -> FloatArray:
    loads = np.sort(np.asarray(worker_loads_tokens, dtype=np.float64).ravel())
    if loads.size == 0 or not np.all(np.isfinite(loads)):
        raise InputError(
            "worker_load_samples must be a non-empty array of finite loads (tokens), "
            f"got {loads.size} values" + ("" if loads.size == 0 else " with a non-finite one")
        )
    return loads


def _order_weights(n: int, ratio: FloatArray) -> FloatArray:
    """w[j, i] = ((i+1)/n)^r_j − (i/n)^r_j: P(max of r_j draws = x_(i+1)); shape (m, n)."""
    grid = np.arange(n + 1, dtype=np.float64) / n
    return np.asarray(np.diff(grid[None, :] ** ratio[:, None], axis=1), dtype=np.float64)


def _weighted_max(sorted_values: FloatArray, ratio: FloatArray, floor: FloatArray) -> FloatArray:
    """Σ_i w_i(r)·max(floor(r), v_(i)) per r, for non-decreasing ``sorted_values``."""
    out = np.empty(ratio.shape, dtype=np.float64)
    rows = max(1, _MAX_WORK_ELEMENTS // sorted_values.size)
    for start in range(0, ratio.size, rows):
        r, g = ratio[start : start + rows], floor[start : start + rows]
        w = _order_weights(sorted_values.size, r)
        out[start : start + rows] = np.einsum(
            "ji,ji->j", w, np.maximum(sorted_values[None, :], g[:, None])
        )
    return out


def _check_ratio(ratio: npt.ArrayLike) -> FloatArray:
    r = np.asarray(ratio, dtype=np.float64)
    if np.any(~np.isfinite(r)) or np.any(r < 1):
        raise InputError(f"ratio (r, Attention workers) must be >= 1, got {ratio!r}")
    return r


def expected_max_empirical(values: npt.ArrayLike, ratio: float | npt.ArrayLike) -> FloatArray:
    """E[max of r iid draws] from the empirical law of ``values``, exactly; vectorised over r.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        The samples defining the law (any unit).
    ratio : float or array-like
        r >= 1, number of draws (real values allowed: (i/n)^r is defined for any r).

    Returns
    -------
    ndarray of float, shape of ``ratio``
        Σ_i ((i/n)^r − ((i−1)/n)^r)·x_(i), in the unit of ``values``.

    Examples
    --------
    >>> [round(float(m), 6) for m in expected_max_empirical([1.0, 3.0], [1, 2])]
    [2.0, 2.5]
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise InputError("values must be non-empty")
    r = _check_ratio(ratio)
    flat = r.ravel()
    out = _weighted_max(x, flat, np.full(flat.shape, -np.inf))
    return out.reshape(r.shape)


def expected_step_time_empirical_s(
    coefficients: CostCoefficients,
    worker_loads_tokens: npt.ArrayLike,
    *,
    batch: int,
    ratio: float | npt.ArrayLike,
) -> FloatArray:
    """E[τ] = E[max(t_C(r), t_F(r), α_A + β_A·max_w L_w)] under the empirical law of L_w, s.

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β, γ of Attention, communication and FFN.
    worker_loads_tokens : array-like of float, shape (n,)
        Samples of the stationary worker load L_w at this B, tokens
        (:func:`afdsizer.workload.sample_worker_loads`).
    batch : int
        B, slots per Attention instance (the B the samples were drawn for).
    ratio : float or array-like
        r >= 1, Attention instances per FFN instance.

    Returns
    -------
    ndarray of float, shape of ``ratio``
        E[τ(r)], s; constant samples B·θ give the mean-field τ.

    Notes
    -----
    Exact order statistics of the sampled law (module notes; docs/design.md §4, §8).

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> tau = expected_step_time_empirical_s(c, [100_000.0], batch=100, ratio=[1, 16])
    >>> [round(float(t) * 1e3, 3) for t in tau]  # ms: the mean-field 2.0 and 2.1
    [2.0, 2.1]
    """
    model = EmpiricalStepModel.build(coefficients, batch, worker_loads_tokens)
    r = _check_ratio(ratio)
    return model.step_time_s(r.ravel()).reshape(r.shape)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _StepModel:
    """E[τ] and E[max_w t_A,w] as functions of r at one batch B, for the sizing search."""

    coefficients: CostCoefficients
    batch: float
    mean_attn_s: float
    """E[t_A,w], s: α_A + β_A·E[L_w]."""
    name: BarrierModel

    def floor_s(self, ratio: FloatArray) -> FloatArray:
        """G(r) = max(t_C(r), t_F(r)), s."""
        c, B = self.coefficients, self.batch
        return np.asarray(np.maximum(c.comm_time_s(B, ratio), c.ffn_time_s(ratio * B)))

    def step_time_s(self, ratio: FloatArray) -> FloatArray:
        """E[τ(r)], s."""
        raise NotImplementedError

    def slowest_attn_s(self, ratio: FloatArray) -> FloatArray:
        """E[max_w t_A,w] over r workers, s (non-decreasing in r)."""
        raise NotImplementedError

    def step_time_lower_s(self, ratio: FloatArray) -> FloatArray:
        """max(G(r), E[max_w t_A,w]) <= E[τ(r)] (Jensen), non-decreasing in r, s."""
        return np.maximum(self.floor_s(ratio), self.slowest_attn_s(ratio))

    def step_time_mean_field_s(self, ratio: FloatArray) -> FloatArray:
        """max(G(r), E[t_A,w]) <= E[τ(r)] (Jensen), s."""
        return np.maximum(self.floor_s(ratio), self.mean_attn_s)

    def mean_field(self, theta_tokens: float, w_attn: float, w_ffn: float) -> MeanFieldRule:
        """The closed-form rule at this B under the objective weights (w_A, w_F)."""
        priced = (w_attn, w_ffn) != (1.0, 1.0)
        return mean_field_rule(
            self.coefficients,
            theta_tokens=theta_tokens,
            batch=int(self.batch),
            price_attn_per_h=w_attn if priced else None,
            price_ffn_per_h=w_ffn if priced else None,
        )

    def mean_field_r_star(self, theta_tokens: float, w_attn: float, w_ffn: float) -> float:
        """The mean-field r* at this B (seeds the exact integer search)."""
        return self.mean_field(theta_tokens, w_attn, w_ffn).r_star

    def ffn_busy_s(self, ratio: FloatArray) -> FloatArray:
        """t_F(r), the FFN's busy time per step, s."""
        return np.asarray(self.coefficients.ffn_time_s(ratio * self.batch), dtype=np.float64)

    def comm_busy_s(self, ratio: FloatArray) -> FloatArray:
        """t_C(r), s."""
        return np.asarray(self.coefficients.comm_time_s(self.batch, ratio), dtype=np.float64)

    def step_time_p99_s(self, ratio: FloatArray) -> FloatArray:
        """99th percentile of τ = max(G, max_w t_A,w): G or the maximum's 0.99 quantile, s."""
        level = 0.99 ** (1.0 / np.asarray(ratio, dtype=np.float64))
        return np.maximum(self.floor_s(ratio), self._attn_quantile_s(level))

    def _attn_quantile_s(self, level: FloatArray) -> FloatArray:
        """The ``level`` quantile of one worker's t_A,w, s."""
        raise NotImplementedError

    def at(self, ratio: float) -> float:
        """E[τ] at one real r, s."""
        return float(self.step_time_s(np.array([float(ratio)]))[0])


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class GaussianStepModel(_StepModel):
    """L_w ~ Normal(B·θ, B·σ²): t_A,w ~ Normal(μ_A, σ_A²)."""

    std_attn_s: float

    @classmethod
    def build(
        cls, coefficients: CostCoefficients, batch: float, theta: float, sigma: float
    ) -> GaussianStepModel:
        c = coefficients
        return cls(
            coefficients=c,
            batch=float(batch),
            mean_attn_s=float(c.attention_time_s(batch * theta)),
            std_attn_s=c.beta_attn_s_per_token * math.sqrt(batch) * sigma,
            name="gaussian",
        )

    def step_time_s(self, ratio: FloatArray) -> FloatArray:
        return expected_max_above_floor(
            self.floor_s(ratio), self.mean_attn_s, self.std_attn_s, ratio
        )

    def _attn_quantile_s(self, level: FloatArray) -> FloatArray:
        return np.asarray(self.mean_attn_s + self.std_attn_s * special.ndtri(level))

    def slowest_attn_s(self, ratio: FloatArray) -> FloatArray:
        if self.std_attn_s == 0:
            return np.full(np.shape(ratio), self.mean_attn_s)
        return self.mean_attn_s + self.std_attn_s * _expected_max_std_normal_fast(ratio)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EmpiricalStepModel(_StepModel):
    """L_w from its sampled law: exact order statistics (module notes)."""

    attn_sorted_s: FloatArray
    """t_A at the sorted sampled loads, s."""

    @classmethod
    def build(
        cls, coefficients: CostCoefficients, batch: float, worker_loads_tokens: npt.ArrayLike
    ) -> EmpiricalStepModel:
        loads = _sorted_loads(worker_loads_tokens)
        t_attn = coefficients.attention_time_s(loads)
        return cls(
            coefficients=coefficients,
            batch=float(batch),
            mean_attn_s=float(t_attn.mean()),
            attn_sorted_s=np.asarray(t_attn, dtype=np.float64),
            name="empirical",
        )

    def step_time_s(self, ratio: FloatArray) -> FloatArray:
        return _weighted_max(self.attn_sorted_s, ratio, self.floor_s(ratio))

    def _attn_quantile_s(self, level: FloatArray) -> FloatArray:
        x = self.attn_sorted_s
        idx = np.clip(np.ceil(level * x.size).astype(np.int64) - 1, 0, x.size - 1)
        return np.asarray(x[idx], dtype=np.float64)

    def slowest_attn_s(self, ratio: FloatArray) -> FloatArray:
        return _weighted_max(self.attn_sorted_s, ratio, np.full(np.shape(ratio), -np.inf))


StepModelFactory = Callable[[int], _StepModel]
"""B → the step-time model at that batch."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BarrierCurve:
    """Barrier-aware per-step times over r at one batch B, under one law of the worker load.

    Arrays have the shape of ``ratios``; times in s, throughput in tokens/s per instance.
    """

    ratios: FloatArray
    """r, Attention instances per FFN instance."""
    barrier_model: BarrierModel
    """The law of L_w: "gaussian" (Normal(B·θ, B·σ²)) or "empirical" (sampled loads)."""
    mean_attention_s: float
    """E[t_A,w] = α_A + β_A·E[L_w], s."""
    slowest_attention_s: FloatArray
    """E[max_w t_A,w] over r workers, s."""
    step_time_s: FloatArray
    """E[τ(r)] = E[max(t_C, t_F, max_w t_A,w)], s."""
    throughput_per_instance: FloatArray
    """Λ(r) = r·B/((r+1)·E[τ]), tokens/s per instance."""
    attention_idle: FloatArray
    """1 − E[t_A,w]/E[τ]: an Attention worker's idle fraction (barrier and FFN waits)."""
    ffn_idle: FloatArray
    """1 − t_F(r)/E[τ]: the FFN instance's idle fraction."""
    comm_time_s: FloatArray
    """t_C(r), communication busy time per step, s."""
    ffn_time_s: FloatArray
    """t_F(r), FFN busy time per step, s."""
    step_time_mean_field_s: FloatArray
    """τ(r) with every worker at its mean load (no barrier), s."""


def barrier_curve(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int,
    ratio: npt.ArrayLike,
    worker_loads_tokens: npt.ArrayLike | None = None,
) -> BarrierCurve:
    """E[τ], the slowest worker, Λ and idle fractions over r, Gaussian or empirical barrier.

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β, γ of Attention, communication and FFN.
    theta_tokens, slot_load_std_tokens : float
        θ and σ of one slot's load, tokens (the Gaussian law; ignored with samples).
    batch : int
        B, slots per Attention instance.
    ratio : array-like of float
        r >= 1 values.
    worker_loads_tokens : array-like of float, shape (n,), optional
        Samples of L_w at this B (:func:`afdsizer.workload.sample_worker_loads`): the
        empirical law. None: Normal(B·θ, B·σ²).

    Returns
    -------
    BarrierCurve
        The same numbers :func:`recommend` sizes with, under the same law.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> curve = barrier_curve(c, theta_tokens=1000.0, slot_load_std_tokens=0.0, batch=100,
    ...     ratio=[1, 16])
    >>> [round(float(t) * 1e3, 3) for t in curve.step_time_s]  # ms, σ = 0: the mean field
    [2.0, 2.1]
    """
    model: _StepModel
    if worker_loads_tokens is None:
        model = GaussianStepModel.build(coefficients, batch, theta_tokens, slot_load_std_tokens)
    else:
        model = EmpiricalStepModel.build(coefficients, batch, worker_loads_tokens)
    return _curve_of(model, _check_ratio(ratio))


def _curve_of(model: _StepModel, ratios: FloatArray) -> BarrierCurve:
    """The :class:`BarrierCurve` of a step model over ``ratios`` (shared with the Λ table)."""
    r, B = ratios, model.batch
    tau = model.step_time_s(r)
    return BarrierCurve(
        ratios=r,
        barrier_model=model.name,
        mean_attention_s=model.mean_attn_s,
        slowest_attention_s=model.slowest_attn_s(r),
        step_time_s=tau,
        throughput_per_instance=np.asarray(r * B / ((r + 1.0) * tau), dtype=np.float64),
        attention_idle=np.asarray(1.0 - model.mean_attn_s / tau, dtype=np.float64),
        ffn_idle=np.asarray(1.0 - model.ffn_busy_s(r) / tau, dtype=np.float64),
        comm_time_s=model.comm_busy_s(r),
        ffn_time_s=model.ffn_busy_s(r),
        step_time_mean_field_s=np.asarray(model.step_time_mean_field_s(r), dtype=np.float64),
    )
