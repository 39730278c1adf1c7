"""``recommend(coefficients, workload, deployment)``: (B, r) for a deployment as it runs (§9).

One path for every entry point (docs/design.md §7). The deployment fixes the step-time model — the
paper's (one TP worker, one microbatch, free overlap: :class:`GaussianStepModel` /
:class:`EmpiricalStepModel`) or the pipeline of :mod:`afdsizer.theory._pipeline` (DP workers,
microbatches, layers) — and the objective weights: per GPU (g_A, g_F), per instance (1, 1) or
per dollar (the prices), J = r·B/((w_A·r + w_F)·E[τ]). B is chosen under the Gaussian law (KV
quantile of a worker's load, mean and p99 TPOT targets at r = 1), then r exactly under the
deployment's barrier law at that B.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import optimize

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.theory._empirical import (
    BarrierCurve,
    BarrierModel,
    EmpiricalStepModel,
    GaussianStepModel,
    WorkerLoadSamples,
    _check_ratio,
    _curve_of,
    _StepModel,
)
from afdsizer.theory._joint import (
    DEFAULT_BATCH_SLOTS,
    BatchLimit,
    JointChoice,
    _best_ratio_for_model,
    _largest_true,
    kv_load_quantile_tokens,
    max_batch_for_kv,
)
from afdsizer.theory._meanfield import MeanFieldRule
from afdsizer.theory._pipeline import PipelineShape, PipelineStepModel
from afdsizer.theory._recommend import (
    RatioRow,
    Recommendation,
    _continuous_optimum,
    _objective_at,
)
from afdsizer.theory._validate import check_batch, check_quantile, check_sigma, check_theta
from afdsizer.workload import Workload

__all__ = ["deployment_curve", "pipeline_shape", "recommend", "recommend_deployment"]

_EXHAUSTIVE = 64
_GRID = 64

ModelFactory = Callable[[int, bool], _StepModel]
"""(B, use the barrier law) → the step model at B (Gaussian when the flag is False)."""


_TABLE_HALF_WIDTH = 4
"""The Λ(r) table lists r_int − 4 … r_int + 4 (r >= 1)."""
_SECONDS_PER_HOUR = 3600.0


def pipeline_shape(coefficients: CostCoefficients, deployment: Deployment) -> PipelineShape:
    """The deployment's workers, microbatches, layers and pipeline kind.

    Raises
    ------
    InputError
        The microbatch pipeline without a layer count (neither the deployment nor the
        coefficients give L).
    """
    kind = deployment.resolved_pipeline
    layers = deployment.layers or coefficients.layers
    if kind == "microbatch" and layers is None:
        raise InputError(
            "the microbatch pipeline needs the number of layers: give --layers (or a model or "
            "profile that records it)"
        )
    return PipelineShape(
        workers_per_instance=deployment.workers_per_instance,
        microbatches=deployment.microbatches,
        layers=int(layers or 1),
        kind=kind,
    )


def _barrier_law(workload: Workload, deployment: Deployment) -> BarrierModel:
    if deployment.barrier == "auto":
        return "empirical" if workload.has_load_law else "gaussian"
    if deployment.barrier == "empirical" and not workload.has_load_law:
        raise InputError(
            "the empirical barrier needs a trace or fixed lengths (its worker-load law); with "
            "θ and σ alone only the Gaussian barrier is possible"
        )
    return deployment.barrier


def _factory(
    coefficients: CostCoefficients,
    workload: Workload,
    shape: PipelineShape,
    law: BarrierModel,
    seed: int,
) -> ModelFactory:
    theta, sigma = workload.theta_tokens, workload.slot_load_std_tokens
    slots_per_mb = shape.workers_per_instance * shape.microbatches  # B per (worker, microbatch)

    def build(batch: int, with_law: bool) -> _StepModel:
        empirical = with_law and law == "empirical"
        if shape.is_paper:
            if empirical:
                return EmpiricalStepModel.build(
                    coefficients, batch, workload.worker_loads(batch, seed=seed)
                )
            return GaussianStepModel.build(coefficients, batch, theta, sigma)
        # An uneven split (b/m not whole) waits for its larger microbatches: ⌈b/m⌉ slots.
        mb_slots = -(-batch // slots_per_mb)
        loads = workload.worker_loads(mb_slots, seed=seed) if empirical else None
        return PipelineStepModel.build(
            coefficients,
            batch=batch,
            shape=shape,
            theta_tokens=theta,
            slot_load_std_tokens=sigma,
            microbatch_loads_tokens=loads,
        )

    return build


def _ratio_cap(model: _StepModel, deployment: Deployment) -> int | None:
    """Largest r meeting the mean and p99 TPOT targets (None: no target; 0: r = 1 misses)."""
    targets = []
    if deployment.tpot_target_s is not None:
        targets.append((model.step_time_s, deployment.tpot_target_s))
    if deployment.tpot_p99_target_s is not None:
        targets.append((model.step_time_p99_s, deployment.tpot_p99_target_s))
    if not targets:
        return None

    def meets(r: int) -> bool:
        x = np.array([float(r)])
        return all(float(f(x)[0]) <= t for f, t in targets)

    return _largest_true(meets, 1) if meets(1) else 0


def _batch_unit(deployment: Deployment) -> int:
    """B must be a multiple of k·m: each worker's b slots split into m equal microbatches."""
    return deployment.workers_per_instance * deployment.microbatches


def _batch_limits(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    factory: ModelFactory,
) -> tuple[int | None, int | None]:
    """(largest B that fits a worker's KV memory, largest B meeting the TPOT targets at r = 1)."""
    k, unit = deployment.workers_per_instance, _batch_unit(deployment)
    kv_max = None
    worker_max = max_batch_for_kv(
        coefficients,
        theta_tokens=workload.theta_tokens,
        slot_load_std_tokens=workload.slot_load_std_tokens,
        kv_quantile=deployment.kv_quantile,
    )
    if worker_max is not None:
        kv_max = (worker_max // deployment.microbatches) * deployment.microbatches * k
    tpot_max = None
    if deployment.tpot_target_s is not None or deployment.tpot_p99_target_s is not None:

        def meets(n: int) -> bool:
            return _ratio_cap(factory(n * unit, False), deployment) != 0

        tpot_max = _largest_true(meets, 1) * unit if meets(1) else 0
    return kv_max, tpot_max


def _choose_batch(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    factory: ModelFactory,
) -> JointChoice:
    """B (a multiple of k·m) and its best r under the Gaussian law, within the limits."""
    theta = workload.theta_tokens
    w_attn, w_ffn = deployment.objective_weights()
    unit = _batch_unit(deployment)
    kv_max, tpot_max = _batch_limits(coefficients, workload, deployment, factory)
    given = deployment.fixed_batch
    if given is not None:
        _check_given_batch(coefficients, workload, deployment, given, kv_max, tpot_max)
        candidates, limit = [given], "given"
    else:
        bounds = [b for b in (kv_max, tpot_max) if b is not None]
        if not bounds:
            default = max(unit, (DEFAULT_BATCH_SLOTS // unit) * unit)
            candidates, limit = [default], "default"
        else:
            hi = min(bounds) // unit
            if hi < 1:
                raise _no_batch_error(coefficients, workload, deployment, kv_max)
            candidates, limit = [n * unit for n in range(1, hi + 1)], "objective"

    cache: dict[int, tuple[int, float]] = {}

    def evaluate(b: int) -> tuple[int, float]:
        if b not in cache:
            model = factory(b, False)
            cap = _ratio_cap(model, deployment)
            cache[b] = _best_ratio_for_model(model, theta, w_attn, w_ffn, cap)
        return cache[b]

    candidates = _zoom(candidates, evaluate)
    best_b = max(candidates, key=lambda b: (evaluate(b)[1], -b))
    r_best, value = evaluate(best_b)
    batch_limit: BatchLimit = limit  # type: ignore[assignment]
    if limit == "objective" and best_b + unit > min(b for b in (kv_max, tpot_max) if b is not None):
        batch_limit = "kv_capacity" if kv_max is not None and best_b + unit > kv_max else "tpot"
    return JointChoice(
        batch=best_b,
        ratio=r_best,
        objective=value,
        batch_limit=batch_limit,
        kv_max_batch=kv_max,
        tpot_max_batch=tpot_max,
    )


def _zoom(candidates: list[int], evaluate: Callable[[int], tuple[int, float]]) -> list[int]:
    """All candidates when few; else a geometric grid refined around its best point."""
    if len(candidates) <= _EXHAUSTIVE:
        return candidates
    pool = candidates
    while True:
        idx = np.unique(np.round(np.geomspace(1, len(pool), _GRID)).astype(np.int64) - 1)
        grid = [pool[i] for i in idx]
        best = max(grid, key=lambda b: (evaluate(b)[1], -b))
        k = grid.index(best)
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        pool = [b for b in pool if lo <= b <= hi]
        if len(pool) <= _GRID:
            return pool


def _check_given_batch(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    batch: int,
    kv_max: int | None,
    tpot_max: int | None,
) -> None:
    workers = deployment.workers_per_instance
    if batch % workers:
        raise InputError(
            f"batch {batch} must be a multiple of the {workers} DP workers (GPUs) per Attention "
            "instance: each runs batch/GPUs slots"
        )
    if kv_max is not None and kv_max < batch:
        worker = batch // workers
        load = kv_load_quantile_tokens(
            theta_tokens=workload.theta_tokens,
            slot_load_std_tokens=workload.slot_load_std_tokens,
            batch=worker,
            kv_quantile=deployment.kv_quantile,
        )
        raise InputError(
            f"batch {batch} does not fit in KV memory: a worker's {deployment.kv_quantile:g} "
            f"quantile load is {load:,.0f} tokens against kv_capacity_tokens="
            f"{coefficients.kv_capacity_tokens:,.0f}; the largest batch that fits is {kv_max}"
            + (f" ({kv_max // workers} per GPU)" if workers > 1 else "")
        )
    if tpot_max is not None and tpot_max < batch:
        raise InputError(
            f"batch {batch} cannot meet the TPOT target even at r = 1; the largest batch that "
            f"meets it is {tpot_max}"
        )


def _no_batch_error(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    kv_max: int | None,
) -> InputError:
    unit = _batch_unit(deployment)
    if kv_max is not None and kv_max < unit:
        return InputError(
            f"no batch fits in KV memory: even {unit} slots per instance (a multiple of workers "
            f"× microbatches) exceed kv_capacity_tokens={coefficients.kv_capacity_tokens:,.0f} "
            f"at θ = {workload.theta_tokens:,.0f} tokens"
        )
    return InputError(f"the TPOT target cannot be met: even B = {unit}, r = 1 gives a longer step")


def _r_star(
    model: _StepModel, mf: MeanFieldRule, r_int: int, weights: tuple[float, float], cap: int | None
) -> float:
    """Continuous optimum near r_int (the closed form when the barrier vanishes)."""
    r_upper = math.inf if cap is None else float(cap) + 1.0
    no_spread = (isinstance(model, GaussianStepModel) and model.std_attn_s == 0) or (
        isinstance(model, PipelineStepModel) and model.mb_sorted_s is None and model.mb_std_s == 0
    )
    if no_spread and 1.0 <= mf.r_star <= r_upper:
        return mf.r_star
    return _continuous_optimum(model, r_int, r_upper, weights)


def _attention_fixed_point(model: _StepModel) -> float:
    """r where the FFN's busy time reaches the barrier-aware Attention time E[Σ_j A_j](r)."""
    f0 = float(model.ffn_busy_s(np.array([0.0]))[0])
    slope = float(model.ffn_busy_s(np.array([1.0]))[0]) - f0

    def excess(r: float) -> float:
        return r - (float(model.slowest_attn_s(np.array([r]))[0]) - f0) / slope

    if excess(1.0) >= 0:
        return (model.mean_attn_s - f0) / slope
    hi = 2.0
    while excess(hi) < 0:
        hi *= 2.0
        if hi > 1e8:
            return math.inf
    return float(optimize.brentq(excess, hi / 2.0, hi, xtol=1e-10, rtol=1e-12))


def _tokens_per_dollar(
    deployment: Deployment, ratio: float, batch: float, step_time_s: float
) -> float | None:
    """r·B·3600/((r·p_A + p_F)·E[τ]), tokens per currency unit, when prices are given."""
    if deployment.price_attn_per_h is None or deployment.price_ffn_per_h is None:
        return None
    cost_per_h = ratio * deployment.price_attn_per_h + deployment.price_ffn_per_h
    return float(ratio * batch * _SECONDS_PER_HOUR / (cost_per_h * step_time_s))


def _ratio_rows(
    model: _StepModel,
    gaussian_mf: _StepModel,
    deployment: Deployment,
    r_int: int,
) -> tuple[RatioRow, ...]:
    """Rows r_int − 4 … r_int + 4 (r >= 1): per-GPU and per-instance figures under the law."""
    ratios = np.arange(max(1, r_int - _TABLE_HALF_WIDTH), r_int + _TABLE_HALF_WIDTH + 1)
    r = ratios.astype(np.float64)
    curve = _curve_of(model, r)
    tau = curve.step_time_s
    tau_mf = gaussian_mf.step_time_mean_field_s(r)
    p99 = model.step_time_p99_s(r)
    B, g_a, g_f = model.batch, deployment.attn_gpus, deployment.ffn_gpus
    rows = []
    for i, ratio in enumerate(ratios):
        per_dollar = _tokens_per_dollar(deployment, float(ratio), B, float(tau[i]))
        meets = None
        if deployment.tpot_target_s is not None or deployment.tpot_p99_target_s is not None:
            meets = bool(
                (deployment.tpot_target_s is None or tau[i] <= deployment.tpot_target_s)
                and (deployment.tpot_p99_target_s is None or p99[i] <= deployment.tpot_p99_target_s)
            )
        gpus = int(ratio) * g_a + g_f
        rows.append(
            RatioRow(
                ratio=int(ratio),
                throughput_per_instance=float(curve.throughput_per_instance[i]),
                throughput_mean_field=float(ratio * B / ((ratio + 1) * tau_mf[i])),
                step_time_s=float(tau[i]),
                attention_idle=float(curve.attention_idle[i]),
                ffn_idle=float(curve.ffn_idle[i]),
                tokens_per_dollar=per_dollar,
                meets_tpot=meets,
                throughput_per_gpu=float(ratio * B / (gpus * tau[i])),
                gpus=gpus,
                step_time_p99_s=float(p99[i]),
            )
        )
    return tuple(rows)


def _objective_name(deployment: Deployment) -> str:
    return {
        "gpu": "throughput_per_gpu",
        "instance": "throughput_per_instance",
        "dollar": "tokens_per_dollar",
    }[deployment.resolved_objective]


def recommend_deployment(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    *,
    seed: int = 0,
) -> Recommendation:
    """Recommend (B, r) for ``workload`` on ``deployment`` with ``coefficients`` (module notes).

    ``seed`` seeds the worker-load draws of the empirical barrier.
    """
    shape = pipeline_shape(coefficients, deployment)
    law = _barrier_law(workload, deployment)
    factory = _factory(coefficients, workload, shape, law, seed)
    weights = deployment.objective_weights()
    theta = workload.theta_tokens
    choice = _choose_batch(coefficients, workload, deployment, factory)
    B = choice.batch
    gaussian = factory(B, False)
    model = factory(B, True) if law == "empirical" else gaussian
    mf = gaussian.mean_field(theta, *weights)
    cap = _ratio_cap(model, deployment)
    if cap == 0:
        raise InputError(
            f"the TPOT target cannot be met at batch {B} under the {law} worker-load law: even "
            "r = 1 gives a longer step; lower the batch or relax the target"
        )
    r_int = (
        _best_ratio_for_model(model, theta, *weights, cap)[0]
        if model is not gaussian
        else (choice.ratio)
    )
    no_spread = _no_spread_model(coefficients, workload, shape, B)
    r_int_mf = _best_ratio_for_model(no_spread, theta, *weights, None)[0]
    r_star = _r_star(model, mf, r_int, weights, cap)
    r_star_gaussian = (
        r_star if model is gaussian else _r_star(gaussian, mf, choice.ratio, weights, cap)
    )
    return _assemble(
        model=model,
        no_spread=no_spread,
        deployment=deployment,
        workload=workload,
        choice=choice,
        mf=mf,
        r_int=r_int,
        r_int_mf=r_int_mf,
        r_star=r_star,
        r_star_gaussian=r_star_gaussian,
        shape=shape,
    )


def _no_spread_model(
    coefficients: CostCoefficients, workload: Workload, shape: PipelineShape, batch: int
) -> _StepModel:
    """The mean-field model at B: every worker at B·θ (σ = 0)."""
    flat = Workload.from_moments(workload.theta_tokens, 0.0)
    return _factory(coefficients, flat, shape, "gaussian", 0)(batch, False)


def _assemble(
    *,
    model: _StepModel,
    no_spread: _StepModel,
    deployment: Deployment,
    workload: Workload,
    choice: JointChoice,
    mf: MeanFieldRule,
    r_int: int,
    r_int_mf: int,
    r_star: float,
    r_star_gaussian: float,
    shape: PipelineShape,
) -> Recommendation:
    weights = deployment.objective_weights()
    B = choice.batch
    r = np.array([float(r_int)])
    tau = model.at(r_int)
    t_attn = model.mean_attn_s
    t_slowest = float(model.slowest_attn_s(r)[0])
    gpus = deployment.gpus_per_bundle(r_int)
    value_mf_best = _objective_at(no_spread, r_int_mf, weights)
    value = _objective_at(model, r_int, weights)
    per_dollar = _tokens_per_dollar(deployment, r_int, B, tau)
    sigma = workload.slot_load_std_tokens
    worker_batch = B // deployment.workers_per_instance
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
        r_attention_barrier=_attention_fixed_point(model),
        batch=B,
        batch_limit=choice.batch_limit,
        kv_max_batch=choice.kv_max_batch,
        tpot_max_batch=choice.tpot_max_batch,
        objective=_objective_name(deployment),  # type: ignore[arg-type]
        throughput_per_instance=r_int * B / ((r_int + 1) * tau),
        throughput_mean_field=r_int * B / ((r_int + 1) * no_spread.at(r_int)),
        tokens_per_dollar=per_dollar,
        bundle_tokens_per_s=r_int * B / tau,
        step_time_s=tau,
        t_attn_s=t_attn,
        t_attn_slowest_s=t_slowest,
        t_comm_s=float(model.comm_busy_s(r)[0]),
        t_ffn_s=float(model.ffn_busy_s(r)[0]),
        attention_idle=1.0 - t_attn / tau,
        ffn_idle=1.0 - float(model.ffn_busy_s(r)[0]) / tau,
        barrier_overhead=1.0 - t_attn / t_slowest,
        barrier_throughput_loss=1.0 - value / value_mf_best,
        rounding_loss=max(0.0, 1.0 - value / _objective_at(model, r_star, weights)),
        theta=workload.theta_tokens,
        slot_load_std=sigma,
        kv_quantile=deployment.kv_quantile,
        kv_load_quantile_tokens=kv_load_quantile_tokens(
            theta_tokens=workload.theta_tokens,
            slot_load_std_tokens=sigma,
            batch=worker_batch,
            kv_quantile=deployment.kv_quantile,
        ),
        kv_capacity_tokens=model.coefficients.kv_capacity_tokens,
        tpot_target_s=deployment.tpot_target_s,
        price_attn_per_h=deployment.price_attn_per_h,
        price_ffn_per_h=deployment.price_ffn_per_h,
        ratio_table=_ratio_rows(model, no_spread, deployment, r_int),
        throughput_per_gpu=r_int * B / (gpus * tau),
        gpus_per_bundle=gpus,
        tpot_p99_s=float(model.step_time_p99_s(r)[0]),
        tpot_p99_target_s=deployment.tpot_p99_target_s,
        attn_gpus=deployment.attn_gpus,
        ffn_gpus=deployment.ffn_gpus,
        attn_parallel=deployment.attn_parallel,
        ffn_parallel=deployment.ffn_parallel,
        microbatches=shape.microbatches,
        pipeline=shape.kind,
        layers=shape.layers if shape.kind == "microbatch" else deployment.layers,
        workers_per_instance=shape.workers_per_instance,
        kv_dtype=deployment.kv_dtype,
        workload_source=workload.source,
        deployment=deployment,
        mean_field=mf,
    )


def recommend(
    coefficients: CostCoefficients,
    workload: Workload | None = None,
    deployment: Deployment | None = None,
    *,
    theta_tokens: float | None = None,
    slot_load_std_tokens: float | None = None,
    batch: int | None = None,
    kv_quantile: float = 0.999,
    tpot_target_s: float | None = None,
    price_attn_per_h: float | None = None,
    price_ffn_per_h: float | None = None,
    worker_load_samples: WorkerLoadSamples | None = None,
    seed: int = 0,
) -> Recommendation:
    """Recommend (B, r): afdsizer's main job, the one function behind every entry point.

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β (γ_C) of Attention, communication and FFN for one worker (per GPU under DP
        attention); ``kv_capacity_tokens`` (per worker) bounds B; ``layers`` gives L.
    workload : Workload
        θ, σ and, from a trace or fixed lengths, the worker-load law (empirical barrier).
    deployment : Deployment, optional
        GPUs, parallelism, microbatches, pipeline, targets, prices, objective; default
        ``Deployment()`` (the defaults every command shares).
    seed : int, default 0
        Seed of the worker-load draws of the empirical barrier.
    theta_tokens, slot_load_std_tokens, batch, kv_quantile, tpot_target_s, price_attn_per_h,
    price_ffn_per_h, worker_load_samples
        The paper's interface of version 0.1 (instances counted alike, free overlap), kept
        for existing scripts: used when ``workload`` is not given.

    Returns
    -------
    Recommendation

    Raises
    ------
    InputError
        A batch that does not fit or misses a target (naming the largest that works), an
        impossible target, inconsistent inputs.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> from afdsizer.deployment import Deployment
    >>> from afdsizer.workload import Workload
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> w = Workload.from_moments(1000.0, 0.0)
    >>> rec = recommend(c, w, Deployment(batch=100, attn_gpus=1, ffn_gpus=1))
    >>> rec.regime, rec.r_int, round(rec.throughput_per_gpu * rec.gpus_per_bundle)
    ('attention', 15, 750000)

    Two microbatches of 50 slots pay the fixed costs twice: a microbatch's Attention (1.5 ms)
    and FFN (0.5 ms + 0.05 ms per r) balance at r = 20, past the per-GPU peak of the FFN line:

    >>> rec = recommend(c, w, Deployment(batch=100, microbatches=2, pipeline="overlapped"))
    >>> rec.r_int, rec.regime, round(rec.step_time_s * 1e3, 6)
    (20, 'attention', 3.0)
    """
    if workload is None:
        if theta_tokens is None or slot_load_std_tokens is None:
            raise InputError("give a Workload, or theta_tokens and slot_load_std_tokens")
        if deployment is not None:
            raise InputError("a Deployment goes with a Workload, not with theta_tokens")
        return _recommend_paper(
            coefficients,
            theta_tokens=theta_tokens,
            slot_load_std_tokens=slot_load_std_tokens,
            batch=batch,
            kv_quantile=kv_quantile,
            tpot_target_s=tpot_target_s,
            price_attn_per_h=price_attn_per_h,
            price_ffn_per_h=price_ffn_per_h,
            worker_load_samples=worker_load_samples,
        )
    legacy = (theta_tokens, slot_load_std_tokens, batch, tpot_target_s, price_attn_per_h)
    if any(v is not None for v in legacy) or worker_load_samples is not None:
        raise InputError(
            "with a Workload, give batch, targets and prices in the Deployment, not as keywords"
        )
    return recommend_deployment(
        coefficients, workload, Deployment() if deployment is None else deployment, seed=seed
    )


def deployment_curve(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    *,
    batch: int,
    ratio: npt.ArrayLike,
    seed: int = 0,
) -> BarrierCurve:
    """E[τ], the slowest worker, Λ, idle and busy times over r at B, as ``recommend`` sizes them.

    The same step model and the same seeded worker-load draw as :func:`recommend` at that B, so
    a report's curves peak where the recommendation does.
    """
    shape = pipeline_shape(coefficients, deployment)
    law = _barrier_law(workload, deployment)
    model = _factory(coefficients, workload, shape, law, seed)(batch, True)
    return _curve_of(model, _check_ratio(ratio))


def _recommend_paper(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int | None,
    kv_quantile: float,
    tpot_target_s: float | None,
    price_attn_per_h: float | None,
    price_ffn_per_h: float | None,
    worker_load_samples: WorkerLoadSamples | None,
) -> Recommendation:
    """The 0.1 keyword interface: the paper's deployment (one GPU a side, instances counted alike,
    per dollar with prices), through the one path."""
    sampler: Callable[[int], npt.ArrayLike] | None = None
    if callable(worker_load_samples):
        sampler = worker_load_samples
    elif worker_load_samples is not None:
        if batch is None:
            raise InputError(
                "worker_load_samples as an array fixes B: give batch too, or pass a "
                "function B -> samples so that B can be chosen"
            )
        fixed = worker_load_samples
        sampler = lambda _batch: fixed  # noqa: E731 -- the law at the one given B
    check_sigma(slot_load_std_tokens)
    workload = Workload(
        theta_tokens=check_theta(theta_tokens),
        slot_load_std_tokens=float(slot_load_std_tokens),
        load_sampler=sampler,
    )
    deployment = Deployment(
        attn_gpus=1,
        ffn_gpus=1,
        batch=None if batch is None else check_batch(batch),
        kv_quantile=check_quantile(kv_quantile),
        tpot_target_s=tpot_target_s,
        price_attn_per_h=price_attn_per_h,
        price_ffn_per_h=price_ffn_per_h,
        objective="dollar" if price_attn_per_h is not None else "instance",
    )
    return recommend_deployment(coefficients, workload, deployment)
