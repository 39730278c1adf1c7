"""Assemble :class:`ReportData` through the public APIs of workload, theory and sim.

One call, :func:`build_deployment_report`, computes everything a report shows from the three
values every entry point shares (design §7): the recommendation (the one ``size`` printed, or
one call of ``recommend``), the curves over r from the same step model and worker-load draw, θ
and σ with their CI as the workload carries them, a small simulated sweep around the
recommended r (common random numbers: one seed for every r) and the regime map over θ × B.
:func:`build_report_data` and :func:`make_report` keep the 0.1 keywords as thin wrappers.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment, ObjectiveName
from afdsizer.errors import InputError
from afdsizer.report._calibration import calibration_summary
from afdsizer.report._data import (
    REGIMES,
    RatioCurves,
    RecommendationSummary,
    RegimeMap,
    ReportData,
    SimPoints,
    ThetaWindows,
    WorkloadSummary,
)
from afdsizer.report._render import write_report
from afdsizer.sim import SimConfig, sweep_ratios
from afdsizer.theory import Recommendation, deployment_curve, recommend, sensitivity_grid
from afdsizer.workload import Trace, Workload, estimate_slot_load

__all__ = [
    "DEFAULT_SIM_STEPS",
    "auto_sim_steps",
    "build_deployment_report",
    "build_report_data",
    "curve_ratios",
    "make_report",
    "sim_ratios_around",
    "theta_windows",
    "write_deployment_report",
]

DEFAULT_SIM_STEPS = 20_000
"""Most simulated decode steps per r when the count is automatic (warm-up included)."""
MIN_AUTO_SIM_STEPS = 2_000
"""Fewest simulated steps per r when the count is automatic."""
SIM_SLOT_STEP_BUDGET = 2e9
"""Automatic step count: Σ over simulated r of steps·r·B stays below this many slot-steps.

The simulator's cost grows with the slots in the bundle (r·B) through the completions per step;
about 4e8 slot-steps take a second on one core, so a report stays within seconds even at r·B in
the hundreds of thousands."""
SIM_RATIO_FACTORS = (0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.6)
"""Simulated r values are the recommended integer r times these factors, rounded."""
CURVE_SPAN = 2.5
"""The theory curves run from r = 1 to this many times the largest r of interest."""
CURVE_FINE_POINTS = 241
"""Evenly spaced (real) r values on the theory curves."""
CURVE_MAX_POINTS = 400
"""Every integer r is added to the curves up to this r_max."""
MIN_WINDOW_REQUESTS = 30
"""A time window with fewer requests gets no θ (its CI would be meaningless)."""
DEFAULT_WINDOWS = 12
"""Time windows for θ over time."""
WORKLOAD_CONFIDENCE = 0.95
"""Level of the θ CI of :meth:`Workload.from_trace` (the estimator's default), shown with it."""
REGIME_THETA_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""Regime-map θ values are the workload's θ times these factors."""
REGIME_BATCH_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
"""Regime-map batch sizes B are the report's B times these factors (rounded)."""


def sim_ratios_around(r_int: int) -> npt.NDArray[np.int64]:
    """Integer r values to simulate around the recommended ``r_int`` (sorted, unique, >= 1).

    Examples
    --------
    >>> sim_ratios_around(10).tolist()
    [5, 7, 8, 10, 12, 13, 16]
    >>> sim_ratios_around(1).tolist()
    [1, 2]
    """
    if r_int < 1:
        raise InputError(f"r_int must be >= 1, got {r_int}")
    picks = {max(1, round(r_int * f)) for f in SIM_RATIO_FACTORS}
    return np.array(sorted(picks), dtype=np.int64)


def auto_sim_steps(ratios: Sequence[int], batch: int) -> int:
    """Steps per simulated r so that the whole sweep stays within the work budget.

    Parameters
    ----------
    ratios : sequence of int
        The r values to simulate.
    batch : int
        B, slots per Attention instance.

    Returns
    -------
    int
        ``SIM_SLOT_STEP_BUDGET / (B·Σr)`` clipped to [:data:`MIN_AUTO_SIM_STEPS`,
        :data:`DEFAULT_SIM_STEPS`].

    Examples
    --------
    >>> auto_sim_steps([6, 8, 10], batch=256)
    20000
    >>> auto_sim_steps([500, 1000], batch=128)
    10416
    """
    slots = batch * sum(int(r) for r in ratios)
    if slots < 1:
        raise InputError(f"need at least one slot to simulate, got B = {batch}, r = {ratios!r}")
    steps = int(SIM_SLOT_STEP_BUDGET // slots)
    return min(DEFAULT_SIM_STEPS, max(MIN_AUTO_SIM_STEPS, steps))


def theta_windows(
    trace: Trace, *, n_windows: int = DEFAULT_WINDOWS, confidence: float = 0.95
) -> ThetaWindows | None:
    """θ on ``n_windows`` equal time windows of the trace's arrivals; None without timestamps.

    Parameters
    ----------
    trace : Trace
        The trace; its ``arrival_s`` (s since the first request) defines the windows.
    n_windows : int, default 12
        Number of equal-width windows over [0, last arrival].
    confidence : float, default 0.95
        Confidence level of each window's interval (delta method).

    Returns
    -------
    ThetaWindows or None
        Per-window θ and CI in tokens (NaN where a window has fewer than
        :data:`MIN_WINDOW_REQUESTS` requests); None when the trace has no timestamps or spans
        no time.
    """
    if n_windows < 1:
        raise InputError(f"n_windows must be >= 1, got {n_windows}")
    arrival = trace.arrival_s
    if arrival is None or arrival.size == 0 or not float(arrival.max()) > 0:
        return None
    edges = np.linspace(0.0, float(arrival.max()), n_windows + 1)
    # The last window is closed on the right so the last arrival is counted.
    index = np.clip(np.searchsorted(edges, arrival, side="right") - 1, 0, n_windows - 1)
    theta = np.full(n_windows, np.nan)
    low = np.full(n_windows, np.nan)
    high = np.full(n_windows, np.nan)
    counts = np.bincount(index, minlength=n_windows).astype(np.int64)
    for w in range(n_windows):
        if counts[w] < MIN_WINDOW_REQUESTS:
            continue
        mask = index == w
        est = estimate_slot_load(
            trace.prompt_tokens[mask], trace.decode_tokens[mask], confidence=confidence
        )
        theta[w] = est.theta_tokens
        low[w], high[w] = est.theta_ci_tokens
    return ThetaWindows(
        start_s=edges[:-1],
        end_s=edges[1:],
        theta_tokens=theta,
        ci_low_tokens=low,
        ci_high_tokens=high,
        n_requests=counts,
    )


def curve_ratios(r_of_interest: float) -> npt.NDArray[np.float64]:
    """The r values of the theory curves: a fine real grid plus every integer (when few).

    The formulas accept real r, so the curves are drawn smooth; the integers (deployable r)
    are kept as grid points so the curve can be read off exactly where it matters.

    Examples
    --------
    >>> r = curve_ratios(4.0)
    >>> float(r[0]), float(r[-1]), bool(np.isin(np.arange(1, 11), r).all())
    (1.0, 10.0, True)
    """
    r_max = max(8, math.ceil(CURVE_SPAN * r_of_interest))
    grid = np.linspace(1.0, r_max, CURVE_FINE_POINTS)
    if r_max <= CURVE_MAX_POINTS:
        grid = np.concatenate([grid, np.arange(1, r_max + 1, dtype=np.float64)])
    return np.asarray(np.unique(grid), dtype=np.float64)


def _sim_points(
    trace: Trace,
    coefficients: CostCoefficients,
    *,
    batch: int,
    ratios: npt.NDArray[np.int64],
    steps: int,
    seed: int,
    microbatches: int = 1,
    layers: int | None = None,
) -> SimPoints:
    # One seed for every r: sweep_ratios gives each slot the same request sequence whatever r
    # is (common random numbers), so neighbouring points differ by r, not by draws. The
    # simulator's own warm-up rule applies.
    config = SimConfig(ratio=int(ratios[0]), batch=batch, steps=steps, seed=seed)
    if layers is not None:  # the deployment's microbatch pipeline, event by event
        config = dataclasses.replace(
            config, pipeline="microbatch", microbatches=microbatches, layers=layers
        )
    sweep = sweep_ratios(
        trace.prompt_tokens, trace.decode_tokens, coefficients, config, [int(r) for r in ratios]
    )
    rows = sweep.results

    def column(name: str) -> npt.NDArray[np.float64]:
        return np.array([getattr(res, name) for res in rows], dtype=np.float64)

    return SimPoints(
        ratios=np.array([res.ratio for res in rows], dtype=np.int64),
        throughput_per_instance=column("throughput_per_instance"),
        throughput_stderr=column("throughput_stderr"),
        attention_idle=column("attention_idle"),
        ffn_idle=column("ffn_idle"),
        barrier_idle=column("barrier_idle"),
        step_time_mean_s=column("step_time_mean_s"),
        steps=steps,
        seed=seed,
    )


def _regime_map(
    coefficients: CostCoefficients, *, theta_tokens: float, sigma_tokens: float, batch: int
) -> RegimeMap:
    # sensitivity_grid scales σ with θ (σ/θ held at the workload's value) and returns grids
    # indexed (θ, B); the map draws B upwards, so they are transposed to (B, θ).
    grid = sensitivity_grid(
        coefficients,
        theta_tokens=theta_tokens,
        slot_load_std_tokens=sigma_tokens,
        batch=batch,
        theta_factors=REGIME_THETA_FACTORS,
        batch_factors=REGIME_BATCH_FACTORS,
    )
    codes = np.array([[REGIMES.index(str(name)) for name in row] for row in grid.regime])
    return RegimeMap(
        theta_tokens=grid.theta_tokens,
        batches=grid.batch,
        r_int=np.asarray(grid.r_int).T,
        r_star_mean_field=np.asarray(grid.r_star_mean_field).T,
        regime_codes=codes.T,
    )


def _workload_summary(workload: Workload, trace: Trace, *, n_windows: int) -> WorkloadSummary:
    """The trace panel from the workload the sizing used: its θ, CI and σ, not a re-estimate."""
    ci = workload.theta_ci_tokens
    assert ci is not None  # Workload.from_trace gives the CI
    return WorkloadSummary(
        prompt_tokens=trace.prompt_tokens,
        decode_tokens=trace.decode_tokens,
        theta_tokens=workload.theta_tokens,
        theta_ci_tokens=ci,
        slot_load_std_tokens=workload.slot_load_std_tokens,
        confidence=WORKLOAD_CONFIDENCE,
        source=trace.source,
        windows=theta_windows(trace, n_windows=n_windows, confidence=WORKLOAD_CONFIDENCE),
    )


def _deployment_curves(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    *,
    batch: int,
    ratios: npt.NDArray[np.float64],
    seed: int,
) -> RatioCurves:
    """The curves of :func:`afdsizer.theory.deployment_curve`: the model the sizing used, and
    its mean field (every worker at B·θ exactly, as ``Recommendation.throughput_mean_field``)."""
    curve = deployment_curve(
        coefficients, workload, deployment, batch=batch, ratio=ratios, seed=seed
    )
    flat = Workload.from_moments(workload.theta_tokens, 0.0)
    mean_field = deployment_curve(
        coefficients, flat, deployment.replace(barrier="gaussian"), batch=batch, ratio=ratios
    )
    r, B = ratios, float(batch)
    return RatioCurves(
        ratios=r,
        throughput_mean_field=np.asarray(r * B / ((r + 1.0) * mean_field.step_time_s)),
        throughput_barrier=curve.throughput_per_instance,
        attention_time_s=np.full_like(r, mean_field.mean_attention_s),
        attention_time_barrier_s=curve.slowest_attention_s,
        comm_time_s=curve.comm_time_s,
        ffn_time_s=curve.ffn_time_s,
        step_time_s=curve.step_time_s,
        attention_idle=curve.attention_idle,
        ffn_idle=curve.ffn_idle,
    )


def _picked_ratios(r_int: int, sim_ratios: Sequence[int] | None) -> npt.NDArray[np.int64]:
    if sim_ratios is None:
        return sim_ratios_around(r_int)
    return np.array(sorted(set(sim_ratios)), dtype=np.int64)


def build_deployment_report(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    *,
    recommendation: Recommendation | None = None,
    sim_steps: int | None = None,
    sim_ratios: Sequence[int] | None = None,
    seed: int = 0,
    regime_map: bool = True,
    n_windows: int = DEFAULT_WINDOWS,
    title: str | None = None,
    profile: Mapping[str, Any] | None = None,
) -> ReportData:
    """Compute every value a report shows, for the (B, r) ``recommend`` gives on a deployment.

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β (γ) of Attention, communication and FFN, s and s/token.
    workload : Workload
        θ, σ and (from a trace) the worker-load law; a trace is also simulated and drawn.
    deployment : Deployment
        GPUs, parallelism, microbatches, targets, prices and objective.
    recommendation : Recommendation, optional
        The recommendation to show (the one ``size`` printed); None calls
        :func:`afdsizer.theory.recommend` once.
    sim_steps : int, optional
        Simulated steps per r (warm-up included); 0 skips the simulation; None picks
        :func:`auto_sim_steps`.
    sim_ratios : sequence of int, optional
        r values to simulate; default :func:`sim_ratios_around` the recommended r.
    seed : int, default 0
        Seed of every simulation (the same for every r). The sizing's worker-load draw keeps
        seed 0, as in ``afdsizer size``, so the curves peak where the recommendation does.
    regime_map : bool, default True
        Draw the integer r and the regime over θ × B (the paper's model only).
    n_windows : int, default 12
        Time windows for θ over time (when the trace has timestamps).
    title : str, optional
        Page title.
    profile : mapping, optional
        The calibration profile the coefficients came from (:func:`afdsizer.cost.load_profile`):
        its fitted parts are drawn against the operating point.

    Returns
    -------
    ReportData

    Raises
    ------
    InputError
        A negative ``sim_steps``, or what ``recommend`` refuses.
    """
    if sim_steps is not None and sim_steps < 0:
        raise InputError(f"sim_steps must be >= 0 steps, got {sim_steps}")
    notes: list[str] = []
    rec = recommendation or recommend(coefficients, workload, deployment)
    summary = RecommendationSummary.from_recommendation(rec)
    B = summary.batch
    ratios = curve_ratios(max(summary.r_star, summary.r_star_mean_field, summary.r_int))
    curves = _deployment_curves(coefficients, workload, deployment, batch=B, ratios=ratios, seed=0)
    trace = workload.trace
    summary_workload = None
    if trace is not None and trace.n_requests > 1 and workload.theta_ci_tokens is not None:
        summary_workload = _workload_summary(workload, trace, n_windows=n_windows)
        if summary_workload.windows is None:
            notes.append("The trace has no timestamps: no θ over time.")
    sim = _deployment_sim(
        coefficients, trace, deployment, rec, sim_steps, sim_ratios, seed=seed, notes=notes
    )
    grid = None
    paper = deployment.workers_per_instance == 1 and rec.pipeline == "overlapped"
    if regime_map and paper and deployment.microbatches == 1:
        grid = _regime_map(
            coefficients,
            theta_tokens=workload.theta_tokens,
            sigma_tokens=workload.slot_load_std_tokens,
            batch=B,
        )
        if deployment.resolved_objective != "instance":
            notes.append("The regime map ranks r per instance (Λ, the paper's objective).")
    elif regime_map:
        notes.append("The regime map is drawn for the paper's model only (m = 1, free overlap).")
    return ReportData(
        title=title or "afdsizer report",
        coefficients=coefficients,
        recommendation=summary,
        curves=curves,
        workload=summary_workload,
        sim=sim,
        regime_map=grid,
        notes=tuple(notes),
        warnings=rec.warnings,
        calibration=None if profile is None else calibration_summary(profile, rec, coefficients),
    )


def _deployment_sim(
    coefficients: CostCoefficients,
    trace: Trace | None,
    deployment: Deployment,
    rec: Recommendation,
    sim_steps: int | None,
    sim_ratios: Sequence[int] | None,
    *,
    seed: int,
    notes: list[str],
) -> SimPoints | None:
    """Simulated points around r_int on the deployment's pipeline, or None with a note why."""
    if trace is None:
        notes.append("θ and σ were given directly: no workload histograms and no simulation.")
        return None
    if sim_steps == 0:
        notes.append("Simulation skipped (sim_steps = 0).")
        return None
    if deployment.workers_per_instance != 1:
        notes.append("DP attention is not simulated in this report.")
        return None
    picks = _picked_ratios(rec.r_int, sim_ratios)
    steps = auto_sim_steps(picks.tolist(), rec.batch) if sim_steps is None else sim_steps
    if coefficients.kv_capacity_tokens is not None:
        # The sizing fits B by the KV load's quantile and keeps every slot busy; the simulator
        # would reserve each request's final P+D at admission, a stricter rule that can refuse
        # the very B recommended. Simulate what was sized: the barrier and the pipeline.
        coefficients = dataclasses.replace(coefficients, kv_capacity_tokens=None)
        notes.append(
            f"Simulated with all B = {rec.batch} slots busy, as sized (B fits the KV load's "
            f"{rec.kv_quantile:g} quantile); the simulator's admission limit is not applied."
        )
    return _sim_points(
        trace,
        coefficients,
        batch=rec.batch,
        ratios=picks,
        steps=steps,
        seed=seed,
        microbatches=deployment.microbatches,
        layers=rec.layers if rec.pipeline == "microbatch" else None,
    )


def write_deployment_report(
    path: str | os.PathLike[str],
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    **options: Any,
) -> tuple[Path, ReportData]:
    """Build with :func:`build_deployment_report` and write the HTML file (atomically)."""
    data = build_deployment_report(coefficients, workload, deployment, **options)
    return write_report(path, data), data


def _paper_inputs(
    *,
    trace: Trace | None,
    theta_tokens: float | None,
    slot_load_std_tokens: float | None,
    barrier_model: str | None,
    **options: Any,
) -> tuple[Workload, Deployment]:
    """The 0.1 keywords as a Workload and the paper's Deployment (instances counted alike)."""
    if (trace is None) == (theta_tokens is None):
        raise InputError("give either a trace or theta_tokens (θ, tokens), not both or neither")
    if trace is not None:
        workload = Workload.from_trace(trace)
    else:
        assert theta_tokens is not None  # checked above; narrows the type for mypy
        workload = Workload.from_moments(float(theta_tokens), float(slot_load_std_tokens or 0.0))
    given = {k: v for k, v in options.items() if v is not None}
    if barrier_model is not None:
        given["barrier"] = barrier_model
    # The paper's Λ counts an Attention and an FFN instance alike: one GPU each, per instance
    # (or per dollar with prices), one microbatch, free overlap.
    objective: ObjectiveName = "dollar" if given.get("price_attn_per_h") is not None else "instance"
    deployment = Deployment(attn_gpus=1, ffn_gpus=1, objective=objective, **given)
    return workload, deployment


def build_report_data(
    coefficients: CostCoefficients,
    *,
    trace: Trace | None = None,
    theta_tokens: float | None = None,
    slot_load_std_tokens: float | None = None,
    batch: int | None = None,
    kv_quantile: float | None = None,
    tpot_target_s: float | None = None,
    price_attn_per_h: float | None = None,
    price_ffn_per_h: float | None = None,
    sim_steps: int | None = None,
    sim_ratios: Sequence[int] | None = None,
    seed: int = 0,
    regime_map: bool = True,
    n_windows: int = DEFAULT_WINDOWS,
    title: str | None = None,
    barrier_model: str | None = None,
) -> ReportData:
    """The 0.1 keyword interface: :func:`build_deployment_report` on the paper's deployment.

    ``trace`` or ``theta_tokens`` and ``slot_load_std_tokens`` give the
    :class:`~afdsizer.workload.Workload`; ``batch``, ``kv_quantile``, ``tpot_target_s``, the
    prices and ``barrier_model`` ("gaussian" or "empirical"; None: the trace's law) go into a
    :class:`~afdsizer.deployment.Deployment` of one GPU per instance with the per-instance
    objective (per dollar with prices). The other parameters are build_deployment_report's.

    Raises
    ------
    InputError
        Neither or both of ``trace`` and ``theta_tokens`` given, or a bad option value.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=2e-3, beta_attn_s_per_token=1e-7, alpha_comm_s=1e-3,
    ...     beta_comm_s_per_token=1e-6, alpha_ffn_s=1e-3, beta_ffn_s_per_token=1.2e-5)
    >>> data = build_report_data(c, theta_tokens=1200.0, slot_load_std_tokens=800.0, batch=32)
    >>> data.recommendation.r_int, data.recommendation.regime, data.sim is None
    (13, 'attention', True)
    """
    if sim_steps is not None and sim_steps < 0:
        raise InputError(f"sim_steps must be >= 0 steps, got {sim_steps}")
    workload, deployment = _paper_inputs(
        trace=trace,
        theta_tokens=theta_tokens,
        slot_load_std_tokens=slot_load_std_tokens,
        barrier_model=barrier_model,
        batch=batch,
        kv_quantile=kv_quantile,
        tpot_target_s=tpot_target_s,
        price_attn_per_h=price_attn_per_h,
        price_ffn_per_h=price_ffn_per_h,
    )
    return build_deployment_report(
        coefficients,
        workload,
        deployment,
        sim_steps=sim_steps,
        sim_ratios=sim_ratios,
        seed=seed,
        regime_map=regime_map,
        n_windows=n_windows,
        title=title,
    )


def make_report(
    path: str | os.PathLike[str], coefficients: CostCoefficients, **options: Any
) -> tuple[Path, ReportData]:
    """:func:`build_report_data` (the 0.1 keywords) written to ``path`` (atomically)."""
    data = build_report_data(coefficients, **options)
    return write_report(path, data), data
