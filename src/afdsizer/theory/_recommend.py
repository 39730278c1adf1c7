"""The main job: one recommendation of (B, r), regime, throughput, idle and barrier cost (§4)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.theory._barrier import barrier_attention_fixed_point
from afdsizer.theory._empirical import (
    BarrierModel,
    EmpiricalStepModel,
    GaussianStepModel,
    WorkerLoadSamples,
    _curve_of,
    _StepModel,
)
from afdsizer.theory._joint import (
    BatchLimit,
    _best_ratio_for_model,
    _max_ratio_for_model,
    best_integer_ratio,
    joint_sizing,
    kv_load_quantile_tokens,
)
from afdsizer.theory._meanfield import MeanFieldRule, Regime, mean_field_rule, throughput_mean_field
from afdsizer.theory._validate import check_sigma, check_theta

__all__ = ["Objective", "RatioRow", "Recommendation"]

Objective = Literal["throughput_per_gpu", "throughput_per_instance", "tokens_per_dollar"]
"""What the (B, r) choice maximises."""

_TABLE_HALF_WIDTH = 4
"""The Λ(r) table lists r_int − 4 … r_int + 4 (r >= 1)."""
_SECONDS_PER_HOUR = 3600.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RatioRow:
    """One row of the Λ(r) table near the optimum, at the recommended batch B.

    Attributes
    ----------
    ratio : int
        r.
    throughput_per_instance : float
        Barrier-aware r·B/((r + 1)·E[τ]), tokens/s per instance.
    throughput_mean_field : float
        Mean-field Λ(r), tokens/s per instance.
    step_time_s : float
        E[τ], s.
    attention_idle : float
        1 − E[t_A,w]/E[τ].
    ffn_idle : float
        1 − t_F(r)/E[τ].
    tokens_per_dollar : float or None
        r·B·3600/((r·p_A + p_F)·E[τ]) when prices are given.
    meets_tpot : bool or None
        E[τ] <= the TPOT target, when one is given.
    throughput_per_gpu : float
        r·B/((r·g_A + g_F)·E[τ]), tokens/s per GPU.
    gpus : int
        r·g_A + g_F, GPUs of the bundle.
    step_time_p99_s : float
        99th percentile of τ under the barrier law, s.
    """

    ratio: int
    throughput_per_instance: float
    throughput_mean_field: float
    step_time_s: float
    attention_idle: float
    ffn_idle: float
    tokens_per_dollar: float | None
    meets_tpot: bool | None
    throughput_per_gpu: float = math.nan
    gpus: int = 0
    step_time_p99_s: float = math.nan


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    """What ``afdsizer size`` prints; the field names are the ``size --json`` keys.

    Attributes
    ----------
    r_star : float
        Barrier-aware optimum over real r >= 1 (maximiser of r·B/((r + 1)·E[τ]), or of tokens
        per dollar with prices), within the TPOT limit, under ``barrier_model``.
    r_star_mean_field : float
        Mean-field closed form r* = max{r_A, r_C, r_peak}.
    r_star_gaussian : float
        The same optimum under the Gaussian barrier (equals ``r_star`` when that is the model).
    r_int : int
        The integer r to deploy: the best integer under the barrier model.
    r_int_mean_field : int
        The better of ⌊r*⌋, ⌈r*⌉ (>= 1) under the mean-field Λ.
    r_int_gaussian : int
        The best integer under the Gaussian barrier.
    barrier_model : {"gaussian", "empirical"}
        The law of a worker's load behind the barrier: Normal(B·θ, B·σ²), or the empirical law
        of sampled worker loads (exact order statistics).
    regime : {"attention", "communication", "ffn"}
        The mean-field regime at B.
    r_attention, r_communication, r_peak : float
        r_A, r_C, r_peak of the mean-field rule (see :class:`MeanFieldRule`).
    r_attention_barrier : float
        The barrier-aware fixed point r = (E[max_w t_A,w](r) − α_F)/(β_F·B); Gaussian:
        E[max_w t_A,w] = μ_A + σ_A·m_r.
    batch : int
        B, slots per Attention instance.
    batch_limit : {"given", "kv_capacity", "tpot", "objective", "default"}
        What set B.
    kv_max_batch, tpot_max_batch : int or None
        Largest B allowed by the KV capacity and by the TPOT target (None: no such limit).
    objective : {"throughput_per_instance", "tokens_per_dollar"}
        What (B, r) maximises.
    throughput_per_instance : float
        Barrier-aware tokens/s per instance at (B, r_int).
    throughput_mean_field : float
        Mean-field Λ(r_int), tokens/s per instance.
    tokens_per_dollar : float or None
        Tokens per currency unit at (B, r_int), with prices.
    bundle_tokens_per_s : float
        r_int·B/E[τ], tokens/s of one rA–1F bundle.
    step_time_s : float
        E[τ] at (B, r_int), s: the expected time per output token (TPOT).
    t_attn_s : float
        E[t_A,w] = α_A + β_A·E[L_w], mean Attention time of one worker, s (E[L_w] = B·θ, or the
        samples' mean).
    t_attn_slowest_s : float
        E[max_w t_A,w] at r_int (Gaussian: μ_A + σ_A·m_r), the slowest worker's expected time, s.
    t_comm_s, t_ffn_s : float
        t_C(r_int) and t_F(r_int), s.
    attention_idle, ffn_idle : float
        Idle fractions at (B, r_int): 1 − E[t_A,w]/E[τ] and 1 − t_F/E[τ].
    barrier_overhead : float
        1 − E[t_A,w]/E[max_w t_A,w]: the share of the slowest worker's time the average worker
        waits at the barrier.
    barrier_throughput_loss : float
        1 − (best barrier-aware integer throughput)/(best mean-field integer throughput).
    rounding_loss : float
        1 − J(r_int)/J(r_star): what deploying an integer costs.
    theta : float
        θ, mean slot load, tokens.
    slot_load_std : float
        σ, std of one slot's load, tokens.
    kv_quantile : float
        Quantile of a worker's load that must fit in memory.
    kv_load_quantile_tokens : float
        That quantile at B, tokens.
    kv_capacity_tokens : float or None
        Per Attention instance, from the coefficients.
    tpot_target_s, price_attn_per_h, price_ffn_per_h : float or None
        The limits and prices used.
    ratio_table : tuple of RatioRow
        Λ(r) near r_int.
    throughput_per_gpu : float
        r_int·B/((r_int·g_A + g_F)·E[τ]), tokens/s per GPU; times ``gpus_per_bundle`` it is
        r_int·B/E[τ].
    gpus_per_bundle : int
        r_int·g_A + g_F.
    tpot_p99_s : float
        99th percentile of the step time under the barrier law at (B, r_int), s.
    tpot_p99_target_s : float or None
        The bound on it, when given.
    attn_gpus, ffn_gpus, attn_parallel, ffn_parallel, microbatches, pipeline, layers,
    workers_per_instance, kv_dtype : the deployment sized (:class:`afdsizer.deployment.Deployment`).
    workload_source : str
        Where θ and σ came from.
    warnings : tuple of str
        What the caller should know (e.g. an operating point outside a calibration's range).
    deployment : Deployment or None
        The deployment sized, whole (a nested object in JSON).
    mean_field : MeanFieldRule or None
        The closed-form rule at B (nested): r_A, r_C, r_peak, r*, regime.
    """

    r_star: float
    r_star_mean_field: float
    r_star_gaussian: float
    r_int: int
    r_int_mean_field: int
    r_int_gaussian: int
    barrier_model: BarrierModel
    regime: Regime
    r_attention: float
    r_communication: float
    r_peak: float
    r_attention_barrier: float
    batch: int
    batch_limit: BatchLimit
    kv_max_batch: int | None
    tpot_max_batch: int | None
    objective: Objective
    throughput_per_instance: float
    throughput_mean_field: float
    tokens_per_dollar: float | None
    bundle_tokens_per_s: float
    step_time_s: float
    t_attn_s: float
    t_attn_slowest_s: float
    t_comm_s: float
    t_ffn_s: float
    attention_idle: float
    ffn_idle: float
    barrier_overhead: float
    barrier_throughput_loss: float
    rounding_loss: float
    theta: float
    slot_load_std: float
    kv_quantile: float
    kv_load_quantile_tokens: float
    kv_capacity_tokens: float | None
    tpot_target_s: float | None
    price_attn_per_h: float | None
    price_ffn_per_h: float | None
    ratio_table: tuple[RatioRow, ...]
    throughput_per_gpu: float = math.nan
    gpus_per_bundle: int = 0
    tpot_p99_s: float = math.nan
    tpot_p99_target_s: float | None = None
    attn_gpus: int = 1
    ffn_gpus: int = 1
    attn_parallel: str = "tp"
    ffn_parallel: str = "auto"
    microbatches: int = 1
    pipeline: str = "overlapped"
    layers: int | None = None
    workers_per_instance: int = 1
    kv_dtype: str | None = None
    workload_source: str = ""
    warnings: tuple[str, ...] = ()
    deployment: Deployment | None = None
    mean_field: MeanFieldRule | None = None


def _objective_at(model: _StepModel, ratio: float, weights: tuple[float, float]) -> float:
    return ratio * model.batch / ((weights[0] * ratio + weights[1]) * model.at(ratio))


def _continuous_optimum(
    model: _StepModel, r_int: int, r_upper: float, weights: tuple[float, float]
) -> float:
    """Real r in [max(1, r_int − 1), min(r_int + 1, r_upper)] maximising the objective."""
    lo, hi = max(1.0, r_int - 1.0), min(r_int + 1.0, r_upper)
    if hi <= lo:
        return float(r_int)
    res = optimize.minimize_scalar(
        lambda r: -_objective_at(model, r, weights),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-9},
    )
    r_best = float(res.x)
    # Bounded Brent is local; never report a point worse than the integer it refines.
    if _objective_at(model, r_best, weights) < _objective_at(model, r_int, weights):
        return float(r_int)
    return r_best


def _tpot_ratio_limit(model: _StepModel, tpot_target_s: float | None) -> float:
    """Largest real r with E[τ] <= target (inf without a target)."""
    if tpot_target_s is None:
        return math.inf
    r_cap = _max_ratio_for_model(model, tpot_target_s)

    def slack(r: float) -> float:
        return tpot_target_s - model.at(r)

    if slack(r_cap + 1.0) >= 0:  # flat stretch: numerically the same step time
        return float(r_cap + 1)
    return float(optimize.brentq(slack, r_cap, r_cap + 1.0, xtol=1e-10))


def _attention_fixed_point(model: _StepModel) -> float:
    """r = (E[max_w t_A,w](r) − α_F)/(β_F·B) under ``model`` (see barrier_attention_fixed_point)."""
    c = model.coefficients
    slope = c.beta_ffn_s_per_token * model.batch

    def excess(r: float) -> float:
        slowest = float(model.slowest_attn_s(np.array([r]))[0])
        return r - (slowest - c.alpha_ffn_s) / slope

    if excess(1.0) >= 0:
        return (model.mean_attn_s - c.alpha_ffn_s) / slope
    hi = 2.0
    while excess(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(excess, hi / 2.0, hi, xtol=1e-10, rtol=1e-12))


def _r_star(
    model: _StepModel,
    mean_field_r_star: float,
    r_int: int,
    weights: tuple[float, float],
    tpot_target_s: float | None,
) -> float:
    """Continuous optimum under ``model`` (the closed form when the barrier vanishes)."""
    r_upper = _tpot_ratio_limit(model, tpot_target_s)
    no_barrier = isinstance(model, GaussianStepModel) and model.std_attn_s == 0
    if no_barrier and 1.0 <= mean_field_r_star <= r_upper:
        return mean_field_r_star  # the barrier vanishes: the closed form is exact
    return _continuous_optimum(model, r_int, r_upper, weights)


def _samples_at(
    worker_load_samples: WorkerLoadSamples, batch: int, given: int | None
) -> npt.ArrayLike:
    """The worker-load samples at B: call the sampler, or check that an array matches B."""
    if callable(worker_load_samples):
        return worker_load_samples(batch)
    if given is None:
        raise InputError(
            "worker_load_samples as an array fixes B: give batch too, or pass a function "
            "B -> samples so that B can be chosen"
        )
    return worker_load_samples


def _recommend_paper(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int | None = None,
    kv_quantile: float = 0.999,
    tpot_target_s: float | None = None,
    price_attn_per_h: float | None = None,
    price_ffn_per_h: float | None = None,
    worker_load_samples: WorkerLoadSamples | None = None,
) -> Recommendation:
    """Recommend (B, r) for one workload and cost model: afdsizer's main job.

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β (γ_C) of Attention, communication and FFN; ``kv_capacity_tokens`` bounds B.
    theta_tokens : float
        θ, mean slot load, tokens (> 0).
    slot_load_std_tokens : float
        σ, std of one slot's stationary load, tokens (>= 0); 0 disables the Gaussian barrier.
    batch : int, optional
        Fix B; otherwise B is chosen jointly with r (see :func:`joint_sizing`).
    kv_quantile : float, default 0.999
        Quantile of a worker's load, Normal(B·θ, B·σ²), that must fit in KV capacity.
    tpot_target_s : float, optional
        Upper bound on the expected step time E[τ], s.
    price_attn_per_h, price_ffn_per_h : float, optional
        Hourly prices of an Attention and an FFN instance: maximise tokens per dollar.
    worker_load_samples : array-like of float, or callable B -> array-like, optional
        Samples of the stationary worker load L_w, tokens (e.g.
        ``lambda b: sample_worker_loads(P, D, batch=b)`` from :mod:`afdsizer.workload`). When
        given, the barrier uses their empirical law (exact order statistics) instead of
        Normal(B·θ, B·σ²): E[τ], r_int, r_star, the idle fractions, the barrier cost and the
        Λ(r) table (``barrier_model = "empirical"``). An array is the law at the given
        ``batch`` (required then); a callable is called once, at the chosen B.

    Returns
    -------
    Recommendation

    Raises
    ------
    InputError
        θ <= 0, σ < 0, B < 1, a B that does not fit in memory or misses the TPOT target (the
        message names the largest B that works), inconsistent prices, or unusable samples.

    Notes
    -----
    B is chosen under the Gaussian law (KV-capacity quantile and TPOT limit, DESIGN.md §4); the
    samples then set r at that B. ``r_star_gaussian`` is the Gaussian-barrier optimum at the
    same B, whatever the model.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> rec = recommend(c, theta_tokens=1000.0, slot_load_std_tokens=0.0, batch=100)
    >>> rec.regime, rec.r_int, round(rec.r_star_mean_field, 6)
    ('attention', 15, 15.0)

    Constant worker loads B·θ (no spread) give the same answer through the empirical barrier:

    >>> rec = recommend(c, theta_tokens=1000.0, slot_load_std_tokens=0.0, batch=100,
    ...     worker_load_samples=[100_000.0])
    >>> rec.barrier_model, rec.r_int, round(rec.r_star, 6)
    ('empirical', 15, 15.0)
    """
    theta = check_theta(theta_tokens)
    sigma = check_sigma(slot_load_std_tokens)
    choice = joint_sizing(
        coefficients,
        theta_tokens=theta,
        slot_load_std_tokens=sigma,
        batch=batch,
        kv_quantile=kv_quantile,
        tpot_target_s=tpot_target_s,
        price_attn_per_h=price_attn_per_h,
        price_ffn_per_h=price_ffn_per_h,
    )
    B = choice.batch
    priced = price_attn_per_h is not None
    weights = (
        (float(price_attn_per_h), float(price_ffn_per_h))  # type: ignore[arg-type]
        if priced
        else (1.0, 1.0)
    )
    mf = mean_field_rule(
        coefficients,
        theta_tokens=theta,
        batch=B,
        price_attn_per_h=price_attn_per_h,
        price_ffn_per_h=price_ffn_per_h,
    )
    gaussian = GaussianStepModel.build(coefficients, B, theta, sigma)
    r_star_gaussian = _r_star(gaussian, mf.r_star, choice.ratio, weights, tpot_target_s)
    model: _StepModel = gaussian
    r_int = choice.ratio
    if worker_load_samples is not None:
        samples = _samples_at(worker_load_samples, B, batch)
        model = EmpiricalStepModel.build(coefficients, B, samples)
        r_cap = None
        if tpot_target_s is not None:
            r_cap = _max_ratio_for_model(model, tpot_target_s)
            if r_cap == 0:
                raise InputError(
                    f"tpot_target_s={tpot_target_s:g} s cannot be met at batch {B} under the "
                    "empirical worker-load law: even r = 1 gives a longer expected step"
                )
        w_attn, w_ffn = weights
        r_int = _best_ratio_for_model(model, theta, w_attn, w_ffn, r_cap)[0]
        r_star = _r_star(model, mf.r_star, r_int, weights, tpot_target_s)
        r_attention_barrier = _attention_fixed_point(model)
    else:
        r_star = r_star_gaussian
        r_attention_barrier = barrier_attention_fixed_point(
            coefficients, theta_tokens=theta, slot_load_std_tokens=sigma, batch=B
        )
    r_int_mf = best_integer_ratio(
        coefficients,
        theta_tokens=theta,
        slot_load_std_tokens=0.0,
        batch=B,
        price_attn_per_h=price_attn_per_h,
        price_ffn_per_h=price_ffn_per_h,
    )

    t_attn = model.mean_attn_s
    t_attn_slowest = float(model.slowest_attn_s(np.array([float(r_int)]))[0])
    t_comm = float(coefficients.comm_time_s(B, r_int))
    t_ffn = float(coefficients.ffn_time_s(r_int * B))
    tau = model.at(r_int)
    lam = r_int * B / ((r_int + 1) * tau)
    lam_mf_best = float(
        throughput_mean_field(coefficients, theta_tokens=theta, batch=B, ratio=r_int_mf)
    )
    objective_int = _objective_at(model, r_int, weights)
    objective_star = _objective_at(model, r_star, weights)

    table = _ratio_table(model, theta, r_int, weights if priced else None, tpot_target_s)
    return Recommendation(
        r_star=r_star,
        r_star_mean_field=mf.r_star,
        r_star_gaussian=r_star_gaussian,
        r_int=r_int,
        r_int_mean_field=r_int_mf,
        r_int_gaussian=choice.ratio,
        barrier_model=model.name,
        regime=mf.regime,
        r_attention=mf.r_attention,
        r_communication=mf.r_communication,
        r_peak=mf.r_peak,
        r_attention_barrier=r_attention_barrier,
        batch=B,
        batch_limit=choice.batch_limit,
        kv_max_batch=choice.kv_max_batch,
        tpot_max_batch=choice.tpot_max_batch,
        objective="tokens_per_dollar" if priced else "throughput_per_instance",
        throughput_per_instance=lam,
        throughput_mean_field=float(
            throughput_mean_field(coefficients, theta_tokens=theta, batch=B, ratio=r_int)
        ),
        tokens_per_dollar=objective_int * _SECONDS_PER_HOUR if priced else None,
        bundle_tokens_per_s=r_int * B / tau,
        step_time_s=tau,
        t_attn_s=t_attn,
        t_attn_slowest_s=t_attn_slowest,
        t_comm_s=t_comm,
        t_ffn_s=t_ffn,
        attention_idle=1.0 - t_attn / tau,
        ffn_idle=1.0 - t_ffn / tau,
        barrier_overhead=1.0 - t_attn / t_attn_slowest,
        barrier_throughput_loss=1.0 - lam / lam_mf_best,
        rounding_loss=max(0.0, 1.0 - objective_int / objective_star),
        theta=theta,
        slot_load_std=sigma,
        kv_quantile=kv_quantile,
        kv_load_quantile_tokens=kv_load_quantile_tokens(
            theta_tokens=theta, slot_load_std_tokens=sigma, batch=B, kv_quantile=kv_quantile
        ),
        kv_capacity_tokens=coefficients.kv_capacity_tokens,
        tpot_target_s=tpot_target_s,
        price_attn_per_h=price_attn_per_h,
        price_ffn_per_h=price_ffn_per_h,
        ratio_table=table,
    )


def _ratio_table(
    model: _StepModel,
    theta: float,
    r_int: int,
    prices: tuple[float, float] | None,
    tpot_target_s: float | None,
) -> tuple[RatioRow, ...]:
    """Rows r_int − 4 … r_int + 4 (r >= 1) at batch B, under ``model``."""
    coefficients, batch = model.coefficients, int(model.batch)
    ratios = np.arange(max(1, r_int - _TABLE_HALF_WIDTH), r_int + _TABLE_HALF_WIDTH + 1)
    r = ratios.astype(np.float64)
    curve = _curve_of(model, r)
    tau = curve.step_time_s
    lam_mf = throughput_mean_field(coefficients, theta_tokens=theta, batch=batch, ratio=r)
    rows = []
    for i, ratio in enumerate(ratios):
        per_dollar = None
        if prices is not None:
            per_dollar = float(
                ratio * batch * _SECONDS_PER_HOUR / ((ratio * prices[0] + prices[1]) * tau[i])
            )
        rows.append(
            RatioRow(
                ratio=int(ratio),
                throughput_per_instance=float(curve.throughput_per_instance[i]),
                throughput_mean_field=float(lam_mf[i]),
                step_time_s=float(tau[i]),
                attention_idle=float(curve.attention_idle[i]),
                ffn_idle=float(curve.ffn_idle[i]),
                tokens_per_dollar=per_dollar,
                meets_tpot=None if tpot_target_s is None else bool(tau[i] <= tpot_target_s),
            )
        )
    return tuple(rows)
