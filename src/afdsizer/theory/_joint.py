"""Integer ratio under the barrier, and joint (B, r) sizing under KV and TPOT limits (design §4).

The objective at a batch B and an integer ratio r is

    J(B, r) = r·B / ((w_A·r + w_F)·E[τ(B, r)]),

with weights w_A = w_F = 1 (throughput per instance Λ, tokens/s per instance) or the hourly
instance prices (tokens/s per currency-unit-per-hour; ×3600 gives tokens per currency unit).

The search over integer r is exact, not a local search: by Jensen's inequality
E[τ] >= max(G, μ_A + σ_A·m_r) >= τ_mean-field, so the mean-field objective bounds J from above, and
the mean-field objective is unimodal (see ``_meanfield``). Only the integers whose mean-field bound
beats the best barrier-aware value found at ⌊r*⌋, ⌈r*⌉ can win, and those are evaluated.
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
from afdsizer.theory._barrier import expected_step_time_s
from afdsizer.theory._empirical import EmpiricalStepModel, GaussianStepModel, _StepModel
from afdsizer.theory._validate import (
    check_batch,
    check_prices,
    check_quantile,
    check_sigma,
    check_theta,
)

__all__ = [
    "DEFAULT_BATCH_SLOTS",
    "BatchLimit",
    "JointChoice",
    "best_integer_ratio",
    "joint_sizing",
    "kv_load_quantile_tokens",
    "max_batch_for_kv",
    "max_batch_for_tpot",
    "max_ratio_for_tpot",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_BATCH_SLOTS = 256
"""B used when nothing bounds it (no KV capacity, no TPOT target, no --batch): the paper's baseline.

Without a bound, throughput per instance keeps rising with B (fixed overheads amortise), so the
optimum would be B → ∞.
"""
_EXHAUSTIVE_BATCH_LIMIT = 512
"""Up to this many candidate batch sizes are all evaluated; above, a zooming grid is used."""
_GRID_POINTS = 64
"""Batch sizes per round of the zooming grid search."""
_SEED_POINTS = 48
"""Geometrically spread ratios evaluated first, to find a good value to prune against."""
_BLOCK_WIDTH = 0.02
"""Relative width of the blocks of integer ratios in the branch-and-bound search."""
_MAX_RATIO = 10_000_000
"""Refuse ratios beyond this: such coefficients are implausible and the scan would be too long."""

BatchLimit = Literal["given", "kv_capacity", "tpot", "objective", "default"]
"""What set B: the caller, the KV capacity, the TPOT target, an interior optimum, or the default."""


def _objective(
    batch: FloatArray, ratio: FloatArray, tau_s: FloatArray, w_attn: float, w_ffn: float
) -> FloatArray:
    """J = r·B / ((w_A·r + w_F)·τ)."""
    return np.asarray(ratio * batch / ((w_attn * ratio + w_ffn) * tau_s), dtype=np.float64)


def kv_load_quantile_tokens(
    *, theta_tokens: float, slot_load_std_tokens: float, batch: float, kv_quantile: float = 0.999
) -> float:
    """The ``kv_quantile`` quantile of a worker's load, B·θ + z_q·sqrt(B)·σ, tokens.

    Parameters
    ----------
    theta_tokens : float
        θ, mean slot load, tokens.
    slot_load_std_tokens : float
        σ, std of one slot's load, tokens.
    batch : float
        B, slots per Attention instance.
    kv_quantile : float, default 0.999
        q in [0.5, 1); z_q = Φ⁻¹(q).

    Returns
    -------
    float
        Tokens of KV cache one Attention instance holds with probability q (CLT:
        L_w ≈ Normal(B·θ, B·σ²)).
    """
    z_q = float(special.ndtri(kv_quantile))
    return batch * theta_tokens + z_q * math.sqrt(batch) * slot_load_std_tokens


def max_batch_for_kv(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    kv_quantile: float = 0.999,
) -> int | None:
    """Largest B whose ``kv_quantile`` load fits in ``coefficients.kv_capacity_tokens``.

    Returns
    -------
    int or None
        The largest B >= 0 with B·θ + z_q·sqrt(B)·σ <= capacity (0 when not even B = 1 fits), or
        None when the capacity is unlimited.

    Notes
    -----
    With s = sqrt(B) the condition is θ·s² + z_q·σ·s − capacity <= 0, so
    s <= (−z_q·σ + sqrt(z_q²·σ² + 4·θ·capacity)) / (2·θ); the floor of s² is then nudged by one
    either way to absorb rounding.

    Examples
    --------
    >>> import dataclasses
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> c = dataclasses.replace(c, kv_capacity_tokens=150_000.0)
    >>> max_batch_for_kv(c, theta_tokens=1000.0, slot_load_std_tokens=800.0)
    122
    """
    theta = check_theta(theta_tokens)
    sigma = check_sigma(slot_load_std_tokens)
    q = check_quantile(kv_quantile)
    capacity = coefficients.kv_capacity_tokens
    if capacity is None:
        return None
    z_q = float(special.ndtri(q))
    s = (-z_q * sigma + math.sqrt((z_q * sigma) ** 2 + 4.0 * theta * capacity)) / (2.0 * theta)
    b_max = math.floor(s * s)

    def fits(b: int) -> bool:
        return b * theta + z_q * math.sqrt(b) * sigma <= capacity

    while b_max > 0 and not fits(b_max):
        b_max -= 1
    while fits(b_max + 1):
        b_max += 1
    return b_max


def _largest_true(predicate_at: Callable[[int], bool], start: int) -> int:
    """Largest integer n >= start with predicate true, for a predicate true at ``start`` and
    false from some point on (monotone): doubling, then bisection."""
    lo, hi = start, start * 2
    while predicate_at(hi):
        lo, hi = hi, hi * 2
        if hi > 2 * _MAX_RATIO:
            raise InputError(f"search for a bound passed {_MAX_RATIO}; coefficients implausible")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if predicate_at(mid):
            lo = mid
        else:
            hi = mid
    return lo


def max_ratio_for_tpot(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int,
    tpot_target_s: float,
) -> int:
    """Largest integer r with E[τ(B, r)] <= ``tpot_target_s`` (0 when r = 1 already misses it).

    E[τ] grows with r (t_C, t_F and the barrier all do), so the feasible ratios are 1..result.
    """
    check_theta(theta_tokens)
    check_sigma(slot_load_std_tokens)
    model = GaussianStepModel.build(coefficients, batch, theta_tokens, slot_load_std_tokens)
    return _max_ratio_for_model(model, tpot_target_s)


def max_batch_for_tpot(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    tpot_target_s: float,
) -> int:
    """Largest B with E[τ(B, r = 1)] <= ``tpot_target_s`` (0 when B = 1 already misses it).

    E[τ] grows with B at any r, so a larger B cannot meet the target at any ratio.
    """

    def meets(b: int) -> bool:
        tau = expected_step_time_s(
            coefficients,
            theta_tokens=theta_tokens,
            slot_load_std_tokens=slot_load_std_tokens,
            batch=b,
            ratio=1,
        )
        return bool(tau <= tpot_target_s)

    if not meets(1):
        return 0
    return _largest_true(meets, 1)


def _best_ratio_at_batch(
    coefficients: CostCoefficients,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int,
    w_attn: float,
    w_ffn: float,
    r_cap: int | None,
) -> tuple[int, float]:
    """(r, J) maximising the Gaussian-barrier objective over integers 1..r_cap (None: unbounded)."""
    model = GaussianStepModel.build(coefficients, batch, theta_tokens, slot_load_std_tokens)
    return _best_ratio_for_model(model, theta_tokens, w_attn, w_ffn, r_cap)


def _best_ratio_for_model(
    model: _StepModel,
    theta_tokens: float,
    w_attn: float,
    w_ffn: float,
    r_cap: int | None,
) -> tuple[int, float]:
    """(r, J) maximising the objective under ``model`` over integers 1..r_cap (None: unbounded).

    θ only places the seeds (near the mean-field r*); the bounds come from the model itself.
    """
    B = model.batch
    r_mf = model.mean_field_r_star(theta_tokens, w_attn, w_ffn)
    if r_mf > _MAX_RATIO:
        raise InputError(
            f"the optimal ratio r* = {r_mf:.3g} exceeds {_MAX_RATIO}; check the coefficients' units"
        )
    cap = _MAX_RATIO if r_cap is None else r_cap

    def barrier_objective(r: FloatArray) -> FloatArray:
        return _objective(np.full(r.shape, B), r, model.step_time_s(r), w_attn, w_ffn)

    def mean_field_objective(r: FloatArray) -> FloatArray:
        # Jensen: E[τ] >= max(G, E[t_A,w]), so this bounds J from above.
        return _objective(np.full(r.shape, B), r, model.step_time_mean_field_s(r), w_attn, w_ffn)

    # Seeds near r*_mf and across [1, r*_mf] give a good value to prune against: with a strong
    # barrier the best r can sit far below r*_mf.
    r_seed_top = min(max(math.ceil(r_mf), 1), cap)
    seeds = np.unique(
        np.clip(
            np.concatenate(
                [[math.floor(r_mf), math.ceil(r_mf)], np.geomspace(1, r_seed_top, _SEED_POINTS)]
            ).round(),
            1,
            cap,
        )
    )
    seed_values = barrier_objective(seeds)
    k = int(np.argmax(seed_values))
    best_r, best_value = int(seeds[k]), float(seed_values[k])
    # Past its peak the mean-field bound J_mf >= J falls: stop where it drops below the best value.
    r_top = r_seed_top
    while r_top < cap and float(mean_field_objective(np.array([float(r_top)]))[0]) >= best_value:
        r_top = min(2 * r_top, cap)

    # Branch and bound over geometric blocks [a, b] of integers. On a block r/(w_A·r + w_F)
    # <= b/(w_A·b + w_F), and by Jensen E[τ(r)] >= max(G(r), E[max_w t_A,w](r)) >= the same at a,
    # because G and the expected maximum grow with r; a block whose bound cannot beat the best
    # value found so far is skipped.
    edges = np.unique(np.round(np.geomspace(1, r_top + 1, _block_count(r_top))).astype(np.int64))
    starts, stops = edges[:-1].astype(np.float64), edges[1:].astype(np.float64) - 1.0
    tau_low = model.step_time_lower_s(starts)
    bounds = stops * B / ((w_attn * stops + w_ffn) * tau_low)
    for i in np.argsort(-bounds, kind="stable"):
        # The slack absorbs rounding in the bound; it can only cost extra evaluations.
        if bounds[i] * (1.0 + 1e-9) < best_value:
            break
        ratios = np.arange(starts[i], stops[i] + 1.0)
        values = barrier_objective(ratios)
        j = int(np.argmax(values))  # first maximum: ties go to the smaller r
        r_j, v_j = int(ratios[j]), float(values[j])
        if v_j > best_value or (v_j == best_value and r_j < best_r):
            best_r, best_value = r_j, v_j
    return best_r, best_value


def _max_ratio_for_model(model: _StepModel, tpot_target_s: float) -> int:
    """Largest integer r with E[τ(r)] <= target under ``model`` (0 when r = 1 misses it)."""

    def meets(r: int) -> bool:
        return model.at(r) <= tpot_target_s

    if not meets(1):
        return 0
    return _largest_true(meets, 1)


def _block_count(r_top: int) -> int:
    """Edges for geometric blocks about 2% wide on [1, r_top + 1]."""
    return max(2, math.ceil(math.log(r_top + 1) / math.log1p(_BLOCK_WIDTH)) + 1)


def best_integer_ratio(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int,
    tpot_target_s: float | None = None,
    price_attn_per_h: float | None = None,
    price_ffn_per_h: float | None = None,
    worker_load_samples: npt.ArrayLike | None = None,
) -> int:
    """The integer r >= 1 maximising the barrier-aware objective at batch B.

    Parameters
    ----------
    coefficients : CostCoefficients
    theta_tokens : float
        θ, mean slot load, tokens (> 0).
    slot_load_std_tokens : float
        σ, std of one slot's load, tokens (>= 0); 0 gives the mean-field integer optimum.
    batch : int
        B, slots per Attention instance (>= 1).
    tpot_target_s : float, optional
        Only ratios with E[τ] <= target, s.
    price_attn_per_h, price_ffn_per_h : float, optional
        Hourly instance prices: maximise tokens per dollar instead of per instance.
    worker_load_samples : array-like of float, shape (n,), optional
        Samples of the stationary worker load L_w at this B, tokens
        (:func:`afdsizer.workload.sample_worker_loads`): E[τ] then uses the exact order
        statistics of their empirical law instead of Normal(B·θ, B·σ²) (σ is then unused).

    Returns
    -------
    int
        The best ratio; ties go to the smaller r.

    Raises
    ------
    InputError
        Bad θ, σ, B or prices, or a TPOT target that r = 1 already misses.

    Notes
    -----
    Maximises r·B/((r + 1)·E[τ]) (design §4) exactly over the integers: see the module notes.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> best_integer_ratio(c, theta_tokens=1000.0, slot_load_std_tokens=800.0, batch=100)
    16
    """
    check_theta(theta_tokens)
    check_sigma(slot_load_std_tokens)
    B = check_batch(batch)
    w_attn, w_ffn = check_prices(price_attn_per_h, price_ffn_per_h)
    model: _StepModel
    if worker_load_samples is None:
        model = GaussianStepModel.build(coefficients, B, theta_tokens, slot_load_std_tokens)
    else:
        model = EmpiricalStepModel.build(coefficients, B, worker_load_samples)
    r_cap = None
    if tpot_target_s is not None:
        r_cap = _max_ratio_for_model(model, tpot_target_s)
        if r_cap == 0:
            raise InputError(
                f"tpot_target_s={tpot_target_s:g} s cannot be met at batch {B}: even r = 1 "
                "gives a longer expected step"
            )
    return _best_ratio_for_model(model, theta_tokens, w_attn, w_ffn, r_cap)[0]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JointChoice:
    """The (B, r) pair chosen by :func:`joint_sizing`.

    Attributes
    ----------
    batch : int
        B, slots per Attention instance.
    ratio : int
        r, Attention instances per FFN instance.
    objective : float
        J(B, r): tokens/s per instance, or tokens/s per (price per hour) with prices.
    batch_limit : {"given", "kv_capacity", "tpot", "objective", "default"}
        What set B.
    kv_max_batch : int or None
        Largest B that fits the KV capacity at the quantile (None: unlimited).
    tpot_max_batch : int or None
        Largest B that meets the TPOT target at r = 1 (None: no target).
    """

    batch: int
    ratio: int
    objective: float
    batch_limit: BatchLimit
    kv_max_batch: int | None
    tpot_max_batch: int | None


def _batch_candidates(lo: int, hi: int) -> list[int]:
    """At most ``_GRID_POINTS`` integers spread geometrically over [lo, hi], ends included."""
    if hi - lo + 1 <= _GRID_POINTS:
        return list(range(lo, hi + 1))
    grid = np.unique(np.round(np.geomspace(lo, hi, _GRID_POINTS)).astype(np.int64))
    return [int(b) for b in grid]


def joint_sizing(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int | None = None,
    kv_quantile: float = 0.999,
    tpot_target_s: float | None = None,
    price_attn_per_h: float | None = None,
    price_ffn_per_h: float | None = None,
) -> JointChoice:
    """Choose (B, r) together: the best objective under the KV-capacity and TPOT limits.

    Parameters
    ----------
    coefficients : CostCoefficients
        Includes ``kv_capacity_tokens`` (per Attention instance; None = unlimited).
    theta_tokens : float
        θ, tokens (> 0).
    slot_load_std_tokens : float
        σ, tokens (>= 0).
    batch : int, optional
        Fix B (checked against both limits) and choose only r.
    kv_quantile : float, default 0.999
        The quantile of a worker's load, Normal(B·θ, B·σ²), that must fit in the KV capacity.
    tpot_target_s : float, optional
        Upper bound on the expected step time E[τ] (time per output token), s.
    price_attn_per_h, price_ffn_per_h : float, optional
        Hourly instance prices (pools may be different GPUs): maximise tokens per dollar.

    Returns
    -------
    JointChoice

    Raises
    ------
    InputError
        The given B does not fit in memory or misses the TPOT target (the message gives the
        largest B that works), no B fits at all, or another input breaks its rule.

    Notes
    -----
    Up to 512 candidate B are all evaluated; above, a geometric grid of 64 is refined around its
    best point until neighbouring candidates are adjacent integers. Without any bound on B the
    objective grows with B, so :data:`DEFAULT_BATCH_SLOTS` is used.

    Examples
    --------
    >>> import dataclasses
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> c = dataclasses.replace(c, kv_capacity_tokens=150_000.0)
    >>> choice = joint_sizing(c, theta_tokens=1000.0, slot_load_std_tokens=800.0)
    >>> choice.batch, choice.ratio, choice.batch_limit
    (122, 15, 'kv_capacity')
    """
    check_theta(theta_tokens)
    check_sigma(slot_load_std_tokens)
    check_quantile(kv_quantile)
    w_attn, w_ffn = check_prices(price_attn_per_h, price_ffn_per_h)
    if tpot_target_s is not None and not (
        isinstance(tpot_target_s, int | float)
        and math.isfinite(tpot_target_s)
        and tpot_target_s > 0
    ):
        raise InputError(f"tpot_target_s must be a finite time > 0 s, got {tpot_target_s!r}")
    stats = {"theta_tokens": theta_tokens, "slot_load_std_tokens": slot_load_std_tokens}
    kv_max = max_batch_for_kv(coefficients, kv_quantile=kv_quantile, **stats)
    tpot_max = (
        None
        if tpot_target_s is None
        else max_batch_for_tpot(coefficients, tpot_target_s=tpot_target_s, **stats)
    )
    if batch is not None:
        B = check_batch(batch)
        if kv_max is not None and kv_max < B:
            load = kv_load_quantile_tokens(batch=B, kv_quantile=kv_quantile, **stats)
            raise InputError(
                f"batch {B} does not fit in kv_capacity_tokens={coefficients.kv_capacity_tokens:g}:"
                f" its {kv_quantile:g} quantile load is {load:.0f} tokens; "
                f"the largest batch that fits is {kv_max}"
            )
        if tpot_max is not None and tpot_max < B:
            raise InputError(
                f"batch {B} cannot meet tpot_target_s={tpot_target_s:g} s even at r = 1; "
                f"the largest batch that meets it is {tpot_max}"
            )
        lo = hi = B
        limit: BatchLimit = "given"
    else:
        bounds = [b for b in (kv_max, tpot_max) if b is not None]
        if not bounds:
            lo = hi = DEFAULT_BATCH_SLOTS
            limit = "default"
        else:
            hi = min(bounds)
            if hi < 1:
                if kv_max is not None and kv_max < 1:
                    load = kv_load_quantile_tokens(batch=1, kv_quantile=kv_quantile, **stats)
                    raise InputError(
                        f"no batch fits in kv_capacity_tokens={coefficients.kv_capacity_tokens:g}:"
                        f" even B = 1 needs {load:.0f} tokens at the {kv_quantile:g} quantile"
                    )
                raise InputError(
                    f"tpot_target_s={tpot_target_s:g} s cannot be met: even B = 1, r = 1 gives a "
                    "longer expected step"
                )
            lo = 1
            limit = "objective"

    cache: dict[int, tuple[int, float]] = {}

    def evaluate(b: int) -> tuple[int, float]:
        if b not in cache:
            r_cap = None
            if tpot_target_s is not None:
                r_cap = max_ratio_for_tpot(
                    coefficients, batch=b, tpot_target_s=tpot_target_s, **stats
                )
            cache[b] = _best_ratio_at_batch(
                coefficients, theta_tokens, slot_load_std_tokens, b, w_attn, w_ffn, r_cap
            )
        return cache[b]

    if hi - lo + 1 <= _EXHAUSTIVE_BATCH_LIMIT:
        candidates = list(range(lo, hi + 1))
    else:
        candidates = _batch_candidates(lo, hi)
        while True:
            best = max(candidates, key=lambda b: (evaluate(b)[1], -b))
            k = candidates.index(best)
            left = candidates[max(k - 1, 0)]
            right = candidates[min(k + 1, len(candidates) - 1)]
            if right - left <= 2:
                break
            candidates = _batch_candidates(left, right)
    # Ties go to the smaller B (less memory, shorter steps).
    best_b = max(candidates, key=lambda b: (evaluate(b)[1], -b))
    r_best, value = evaluate(best_b)
    if limit == "objective" and best_b == hi:
        limit = "kv_capacity" if kv_max is not None and hi == kv_max else "tpot"
    return JointChoice(
        batch=best_b,
        ratio=r_best,
        objective=value,
        batch_limit=limit,
        kv_max_batch=kv_max,
        tpot_max_batch=tpot_max,
    )
