"""The layout search: enumerate, screen in closed form, size the best with ``recommend``."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients, load_hardware_spec, load_model_spec
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.plan._adapter import (
    Sized,
    layout_coefficients,
    operating_point_coefficients,
    size_layout,
)
from afdsizer.plan._screen import ScreenInputs, ScreenResult, screen
from afdsizer.workload import Workload

__all__ = ["Candidate", "Fleet", "Plan", "PlanSpace", "fleet_for", "plan_layouts"]

_SECONDS_PER_HOUR = 3600.0
_MEMORY_RESERVE_FRAC = 0.1
"""Share of HBM kept free on an FFN GPU (the cost stage keeps the same on the Attention side)."""
_DEFAULT_SLOTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
_PARETO_MAX_POINTS = 400
_TIE_BREAK = 1e-9
"""Relative weight of a candidate's capacity when its served objective ties another's."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlanSpace:
    """The layouts and (B, r) grid the search enumerates.

    Attributes
    ----------
    attn_gpus, ffn_gpus : tuple of int
        g_A and g_F values.
    attn_parallel : tuple of {"tp", "dp"}
        Attention parallelism (DP with g_A = 1 is TP and is not listed twice).
    ffn_parallel : tuple of {"ep", "tp"}
        FFN parallelism; EP only for MoE models.
    microbatches : tuple of int
        m values.
    kv_dtypes : tuple of str
        KV dtypes allowed.
    slots_per_microbatch : tuple of int
        s grid; B = s·m·w (w workers per instance), so m | B and g_A | B under DP.
    max_ratio : int
        r grid is 1 … max_ratio.
    pipeline : {"microbatch", "overlapped"}
        Step model: the m·L flow shop engines run (m = 1 serial), or the paper's free overlap.
    """

    attn_gpus: tuple[int, ...] = (1, 2, 4, 8)
    ffn_gpus: tuple[int, ...] = (1, 2, 4, 8, 16)
    attn_parallel: tuple[str, ...] = ("tp", "dp")
    ffn_parallel: tuple[str, ...] = ("ep", "tp")
    microbatches: tuple[int, ...] = (1, 2, 3)
    kv_dtypes: tuple[str, ...] = ("bf16",)
    slots_per_microbatch: tuple[int, ...] = _DEFAULT_SLOTS
    max_ratio: int = 48
    pipeline: Literal["microbatch", "overlapped"] = "microbatch"

    def __post_init__(self) -> None:
        for name in ("attn_gpus", "ffn_gpus", "microbatches", "slots_per_microbatch"):
            values = getattr(self, name)
            if not values or any(isinstance(v, bool) or int(v) != v or v < 1 for v in values):
                raise InputError(f"{name} must be integers >= 1, got {values!r}")
        if not isinstance(self.max_ratio, int) or self.max_ratio < 1:
            raise InputError(f"max_ratio must be an integer >= 1, got {self.max_ratio!r}")
        if self.pipeline not in ("microbatch", "overlapped"):
            raise InputError(f"pipeline must be microbatch or overlapped, got {self.pipeline!r}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One planned layout with its (B, r); the fields are the ``plan --json`` keys.

    Attributes
    ----------
    attn_gpus, ffn_gpus : int
        g_A, g_F.
    attn_parallel, ffn_parallel : str
        "tp"/"dp" and "ep"/"tp".
    microbatches : int
        m.
    kv_dtype : str
        KV-cache dtype.
    batch : int
        B, slots per Attention instance.
    ratio : int
        r.
    gpus : int
        r·g_A + g_F, GPUs of one bundle.
    throughput_per_gpu : float
        Tokens/s per GPU.
    objective : float
        What the ranking maximises: tokens/s per GPU, per instance, or tokens per dollar;
        with a rate, that of the fleet serving it (capacity times utilisation λ/capacity).
    tpot_s, tpot_p99_s : float
        E[τ] and its 99th percentile, s.
    regime : str
        Attention-, communication- or FFN-bound.
    source : str
        "recommend" (sized by afdsizer.theory.recommend) or "screen" (closed-form screen).
    pipeline : str
        The step model it was sized with (the search's ``pipeline``: the m·L flow shop, serial
        at m = 1, or free overlap).
    layers : int or None
        L of that flow shop.
    """

    attn_gpus: int
    ffn_gpus: int
    attn_parallel: str
    ffn_parallel: str
    microbatches: int
    kv_dtype: str
    batch: int
    ratio: int
    gpus: int
    throughput_per_gpu: float
    objective: float
    tpot_s: float
    tpot_p99_s: float
    regime: str
    source: str
    pipeline: str = "auto"
    layers: int | None = None

    def deployment(self, base: Deployment) -> Deployment:
        """``base`` with this candidate's layout, batch and step model (as it was sized)."""
        return base.replace(
            attn_gpus=self.attn_gpus,
            ffn_gpus=self.ffn_gpus,
            attn_parallel=self.attn_parallel,
            ffn_parallel=self.ffn_parallel,
            microbatches=self.microbatches,
            kv_dtype=self.kv_dtype,
            pipeline=self.pipeline,
            layers=self.layers or base.layers,
            batch=self.batch,
            batch_per_gpu=None,
        )

    @property
    def tokens_per_s(self) -> float:
        """r·B/E[τ], tokens/s of one bundle."""
        return self.ratio * self.batch / self.tpot_s


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """How many bundles of the chosen candidate serve the arrival rate.

    Attributes
    ----------
    bundles : int
        ⌈λ / capacity of one bundle⌉.
    gpus : int
        bundles·(r·g_A + g_F).
    rate_per_s : float
        λ, requests/s to serve.
    requests_per_s_capacity : float
        bundles·r·B/(E[τ]·E[D]), requests/s the fleet decodes with every slot full (≥ λ).
    headroom : float
        1 − λ/capacity.
    """

    bundles: int
    gpus: int
    rate_per_s: float
    requests_per_s_capacity: float
    headroom: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The search's answer.

    Attributes
    ----------
    candidates : tuple of Candidate
        Best first (one per layout).
    fleet : Fleet or None
        For the best candidate, when a rate and the mean decode length are known.
    pareto : tuple of (float, float)
        (TPOT p99 s, tokens/s per GPU) of the screen's non-dominated feasible candidates.
    n_screened : int
        Candidates the screen evaluated.
    n_layouts : int
        Layouts whose weights fit.
    elapsed_s : float
        Wall time of the search, s.
    """

    candidates: tuple[Candidate, ...]
    fleet: Fleet | None
    pareto: tuple[tuple[float, float], ...]
    n_screened: int
    n_layouts: int
    elapsed_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    deployment: Deployment
    coefficients: CostCoefficients
    model: str | Path
    hardware: str | Path
    profile: Path | None


def _enumerate_layouts(
    space: PlanSpace,
    base: Deployment,
    *,
    model: str | Path,
    hardware: str | Path,
    profile: Path | None,
    theta_tokens: float | None = None,
) -> list[_Layout]:
    """Every layout whose weights fit per GPU on both sides, with its worker coefficients."""
    spec = load_model_spec(model)
    hbm_bytes = load_hardware_spec(hardware).hbm_capacity_bytes * (1 - _MEMORY_RESERVE_FRAC)
    ffn_pars = [p for p in space.ffn_parallel if spec.is_moe or p == "tp"] or ["tp"]
    coeffs: dict[tuple[object, ...], CostCoefficients | None] = {}
    layouts = []
    grid = itertools.product(
        space.attn_gpus,
        space.attn_parallel,
        space.ffn_gpus,
        ffn_pars,
        space.microbatches,
        space.kv_dtypes,
    )
    for g_a, a_par, g_f, f_par, m, kv in grid:
        if a_par == "dp" and g_a == 1:
            continue  # one GPU per instance: DP and TP are the same layout
        if spec.ffn_weight_bytes / g_f > hbm_bytes:
            continue
        dep = base.replace(
            attn_gpus=g_a,
            attn_parallel=a_par,
            ffn_gpus=g_f,
            ffn_parallel=f_par,
            microbatches=m,
            kv_dtype=kv,
            pipeline=space.pipeline,
            layers=base.layers or spec.num_layers,
            batch=None,
            batch_per_gpu=None,
        )
        if base.price_attn_per_h is not None and base.price_ffn_per_h is not None:
            # The plan's prices are per GPU-hour; a Deployment's are per instance.
            dep = dep.replace(
                price_attn_per_h=base.price_attn_per_h * g_a,
                price_ffn_per_h=base.price_ffn_per_h * g_f,
            )
        key = (g_a, a_par, g_f, f_par, kv)
        if key not in coeffs:
            try:
                coeffs[key] = layout_coefficients(
                    model=model,
                    hardware=hardware,
                    deployment=dep,
                    profile=profile,
                    slot_context_tokens=theta_tokens,
                )
            except InputError:
                coeffs[key] = None  # the Attention-side weights do not fit this layout
        c = coeffs[key]
        if c is not None:
            layouts.append(_Layout(dep, c, model, hardware, profile))
    return layouts


def _screen_inputs(layouts: list[_Layout], space: PlanSpace) -> ScreenInputs:
    def col(get: object) -> npt.NDArray[np.float64]:
        return np.array([get(x) for x in layouts], dtype=np.float64)  # type: ignore[operator]

    def icol(get: object) -> npt.NDArray[np.int64]:
        return np.array([get(x) for x in layouts], dtype=np.int64)  # type: ignore[operator]

    weights = [x.deployment.objective_weights() for x in layouts]
    return ScreenInputs(
        alpha_attn_s=col(lambda x: x.coefficients.alpha_attn_s),
        beta_attn_s_per_token=col(lambda x: x.coefficients.beta_attn_s_per_token),
        alpha_comm_s=col(lambda x: x.coefficients.alpha_comm_s),
        beta_comm_s_per_token=col(lambda x: x.coefficients.beta_comm_s_per_token),
        gamma_comm_s_per_token=col(lambda x: x.coefficients.gamma_comm_s_per_token),
        alpha_ffn_s=col(lambda x: x.coefficients.alpha_ffn_s),
        beta_ffn_s_per_token=col(lambda x: x.coefficients.beta_ffn_s_per_token),
        kv_capacity_tokens=col(lambda x: x.coefficients.kv_capacity_tokens or math.inf),
        workers=icol(lambda x: x.deployment.workers_per_instance),
        microbatches=icol(lambda x: x.deployment.microbatches),
        layers=icol(lambda x: x.deployment.layers),
        overlapped=np.array([x.deployment.resolved_pipeline == "overlapped" for x in layouts]),
        weight_attn=np.array([w[0] for w in weights], dtype=np.float64),
        weight_ffn=np.array([w[1] for w in weights], dtype=np.float64),
        attn_gpus=icol(lambda x: x.deployment.attn_gpus),
        ffn_gpus=icol(lambda x: x.deployment.ffn_gpus),
        slots_per_microbatch=np.array(space.slots_per_microbatch, dtype=np.int64),
        ratios=np.arange(1, space.max_ratio + 1, dtype=np.int64),
    )


def fleet_for(
    tokens_per_s_per_bundle: float, gpus_per_bundle: int, rate_per_s: float, decode_tokens: float
) -> Fleet:
    """Bundles to serve λ requests/s that decode E[D] tokens each (every slot full: capacity).

    Examples
    --------
    >>> f = fleet_for(1000.0, 10, rate_per_s=12.0, decode_tokens=200.0)
    >>> f.bundles, f.gpus, f.requests_per_s_capacity, round(f.headroom, 3)
    (3, 30, 15.0, 0.2)
    """
    per_bundle = tokens_per_s_per_bundle / decode_tokens
    bundles = max(1, math.ceil(rate_per_s / per_bundle - 1e-12))
    capacity = bundles * per_bundle
    return Fleet(
        bundles=bundles,
        gpus=bundles * gpus_per_bundle,
        rate_per_s=rate_per_s,
        requests_per_s_capacity=capacity,
        headroom=1.0 - rate_per_s / capacity,
    )


def _feasible(
    res: ScreenResult,
    base: Deployment,
    *,
    gpu_budget: int | None,
    rate_per_s: float | None,
    decode_tokens: float | None,
) -> npt.NDArray[np.bool_]:
    ok = res.kv_ok.copy()
    if base.tpot_target_s is not None:
        ok &= res.step_time_s <= base.tpot_target_s
    if base.tpot_p99_target_s is not None:
        ok &= res.step_time_p99_s <= base.tpot_p99_target_s
    if gpu_budget is not None:
        gpus = res.gpus
        if rate_per_s is not None and decode_tokens is not None:
            per_bundle = res.ratio * res.batch / res.step_time_s / decode_tokens
            gpus = np.maximum(1, np.ceil(rate_per_s / per_bundle - 1e-12)) * res.gpus
        ok &= gpus <= gpu_budget
    return ok


def _served_objective(
    objective: npt.NDArray[np.float64],
    res: ScreenResult,
    rate_per_s: float | None,
    decode_tokens: float | None,
) -> npt.NDArray[np.float64]:
    """With a rate, the objective of the fleet that serves it: capacity scaled by utilisation.

    A fleet of n bundles serves λ·E[D] tokens/s, so per GPU (or per dollar) it earns the
    bundle's objective times λ/(n·capacity of a bundle): a bundle far larger than the rate
    needs wastes what it does not use.
    """
    if rate_per_s is None or decode_tokens is None:
        return objective
    per_bundle = res.ratio * res.batch / res.step_time_s / decode_tokens
    bundles = np.maximum(1, np.ceil(rate_per_s / per_bundle - 1e-12))
    return objective * rate_per_s / (bundles * per_bundle)


def _screen_candidate(layout: _Layout, res: ScreenResult, idx: tuple[int, ...]) -> Candidate:
    d = layout.deployment
    return Candidate(
        attn_gpus=d.attn_gpus,
        ffn_gpus=d.ffn_gpus,
        attn_parallel=d.attn_parallel,
        ffn_parallel=str(d.ffn_parallel),
        microbatches=d.microbatches,
        kv_dtype=d.kv_dtype,
        batch=int(res.batch[idx]),
        ratio=int(res.ratio[idx]),
        gpus=int(res.gpus[idx]),
        throughput_per_gpu=float(res.throughput_per_gpu[idx]),
        objective=float(res.objective[idx]) * _objective_scale(d),
        tpot_s=float(res.step_time_s[idx]),
        tpot_p99_s=float(res.step_time_p99_s[idx]),
        regime=str(res.regime[idx]),
        source="screen",
        pipeline=d.pipeline,
        layers=d.layers,
    )


def _objective_scale(deployment: Deployment) -> float:
    """Tokens per dollar from tokens/s per ($/h): 3600; 1 for the per-GPU or per-instance rate."""
    return _SECONDS_PER_HOUR if deployment.resolved_objective == "dollar" else 1.0


def _from_sized(layout: _Layout, screened: Candidate, sized: Sized) -> Candidate:
    w_a, w_f = layout.deployment.objective_weights()
    tokens_per_s = sized.throughput_per_gpu * sized.gpus_per_bundle
    scale = _objective_scale(layout.deployment)
    return dataclasses.replace(
        screened,
        batch=sized.batch,
        ratio=sized.ratio,
        gpus=sized.gpus_per_bundle,
        throughput_per_gpu=sized.throughput_per_gpu,
        objective=tokens_per_s / (w_a * sized.ratio + w_f) * scale,
        tpot_s=sized.step_time_s,
        tpot_p99_s=screened.tpot_p99_s if sized.tpot_p99_s is None else sized.tpot_p99_s,
        regime=sized.regime,
        source=sized.source,
    )


def _refined(
    layout: _Layout, screened: Candidate, workload: Workload, fleet: _FleetTerms
) -> Candidate | None:
    """The layout sized as ``size`` sizes it; None where nothing of it fits the limits.

    Without a rate ``recommend`` chooses (B, r) jointly. With one, B is the screen's choice for
    that rate (a bundle sized to the traffic, not the largest the memory allows) and
    ``recommend`` chooses r; of its Λ(r) table (r_int ± 4) the row whose fleet serves the rate
    at the least cost is kept.
    """
    dep = layout.deployment
    if fleet.rate_per_s is not None:
        dep = dep.replace(batch=screened.batch)
    try:
        sized = size_layout(layout.coefficients, workload, dep, model=layout.model,
                            hardware=layout.hardware, profile=layout.profile)  # fmt: skip
    except InputError:
        return None  # recommend finds nothing within the targets where the screen did
    options = [sized] if fleet.rate_per_s is None else [sized, *sized.neighbours]
    if fleet.rate_per_s is not None and screened.ratio < min(o.ratio for o in options):
        # The rate needs a smaller bundle than any row of recommend's table (r_int ± 4).
        raise _SmallerBundleError
    best: tuple[float, float] | None = None
    chosen: Candidate | None = None
    for option in options:
        cand = _served(_from_sized(layout, screened, option), fleet)
        if fleet.budget is not None and _fleet_gpus(cand, fleet) > fleet.budget:
            continue
        key = (_fleet_cost(cand, layout, fleet), -cand.objective)
        if best is None or key < best:
            best, chosen = key, cand
    return chosen


class _SmallerBundleError(Exception):
    """The rate is served by a bundle smaller than any row of recommend's table."""


_RESCREEN_ROUNDS = 3
"""Rounds of re-linearising t_F at the screen's operating point (as size does for recommend)."""


def _rescreen(
    layout: _Layout,
    screened: Candidate,
    workload: Workload,
    base: Deployment,
    space: PlanSpace,
    fleet: _FleetTerms,
) -> Candidate:
    """The screen's right-sized bundle with t_F linearised where it operates, r chosen again.

    The screen's coefficients are linearised over a wide range of FFN batches; ``size``
    linearises t_F around the operating point. Re-screening this B over every r with the
    operating point's coefficients (to a fixed point) keeps the small bundle's numbers on
    the same footing as recommend's.
    """
    dep = layout.deployment
    slots = screened.batch // (dep.microbatches * dep.workers_per_instance)
    sub = dataclasses.replace(space, slots_per_microbatch=(slots,))
    cand = screened
    for _ in range(_RESCREEN_ROUNDS):
        coeffs = operating_point_coefficients(
            model=layout.model, hardware=layout.hardware, deployment=dep,
            tokens_per_pass=cand.ratio * cand.batch / dep.microbatches, profile=layout.profile,
            slot_context_tokens=workload.theta_tokens,
        )  # fmt: skip
        lay = dataclasses.replace(layout, coefficients=coeffs)
        res = screen(
            _screen_inputs([lay], sub),
            theta_tokens=workload.theta_tokens,
            slot_load_std_tokens=workload.slot_load_std_tokens,
            kv_quantile=base.kv_quantile,
        )
        ok = _feasible(res, base, gpu_budget=fleet.budget, rate_per_s=fleet.rate_per_s,
                       decode_tokens=fleet.decode_tokens)  # fmt: skip
        served = _served_objective(res.objective, res, fleet.rate_per_s, fleet.decode_tokens)
        score = np.where(ok, served, -np.inf).ravel()
        if not np.isfinite(score.max()):
            return screened
        flat = np.unravel_index(int(np.argmax(score)), res.batch.shape[1:])
        idx = (0, *(int(k) for k in flat))
        new = _served(_screen_candidate(lay, res, idx), fleet)
        if new.ratio == cand.ratio and cand is not screened:
            return new
        cand = new
    return cand


@dataclasses.dataclass(frozen=True, slots=True)
class _FleetTerms:
    rate_per_s: float | None
    decode_tokens: float | None
    budget: int | None


def _served(cand: Candidate, fleet: _FleetTerms) -> Candidate:
    """With a rate, the objective of the fleet serving it (see :func:`_served_objective`)."""
    if fleet.rate_per_s is None or fleet.decode_tokens is None:
        return cand
    f = fleet_for(cand.tokens_per_s, cand.gpus, fleet.rate_per_s, fleet.decode_tokens)
    return dataclasses.replace(cand, objective=cand.objective * (1.0 - f.headroom))


def _fleet_cost(cand: Candidate, layout: _Layout, fleet: _FleetTerms) -> float:
    """GPUs (or price) of the fleet serving the rate: bundles·(w_A·r + w_F); 0 without a rate."""
    if fleet.rate_per_s is None or fleet.decode_tokens is None:
        return 0.0
    w_a, w_f = layout.deployment.objective_weights()
    bundles = fleet_for(cand.tokens_per_s, cand.gpus, fleet.rate_per_s, fleet.decode_tokens)
    return bundles.bundles * (w_a * cand.ratio + w_f)


def _fleet_gpus(cand: Candidate, fleet: _FleetTerms) -> int:
    if fleet.rate_per_s is None or fleet.decode_tokens is None:
        return cand.gpus
    return fleet_for(cand.tokens_per_s, cand.gpus, fleet.rate_per_s, fleet.decode_tokens).gpus


def _pareto(res: ScreenResult, ok: npt.NDArray[np.bool_]) -> tuple[tuple[float, float], ...]:
    """Non-dominated (TPOT p99, tokens/s/GPU): lower latency or higher throughput."""
    x, y = res.step_time_p99_s[ok], res.throughput_per_gpu[ok]
    order = np.lexsort((-y, x))
    best = -np.inf
    points = []
    for i in order:
        if y[i] > best:
            best = y[i]
            points.append((float(x[i]), float(y[i])))
    step = max(1, len(points) // _PARETO_MAX_POINTS)
    return tuple(points[::step])


def plan_layouts(
    workload: Workload,
    *,
    model: str | Path,
    hardware: str | Path,
    base: Deployment | None = None,
    space: PlanSpace | None = None,
    profile: Path | None = None,
    gpu_budget: int | None = None,
    rate_per_s: float | None = None,
    refine: int = 3,
) -> Plan:
    """Search layouts for ``workload``: closed-form screen, then ``recommend`` on the best.

    Parameters
    ----------
    workload : Workload
        θ, σ (and the trace, for E[D] and the fleet).
    model, hardware : str or path
        Cost presets or files (per-layout coefficients come from them).
    base : Deployment, optional
        Shared fields: KV quantile, TPOT targets, objective (defaults: Deployment()); its
        ``price_attn_per_h``/``price_ffn_per_h`` are read per GPU-hour here (each layout's
        instance price is that times its GPUs).
    space : PlanSpace, optional
        What to enumerate (default :class:`PlanSpace`).
    profile : path, optional
        Fitted profile instead of the roofline.
    gpu_budget : int, optional
        Most GPUs the fleet (or, without a rate, one bundle) may use.
    rate_per_s : float, optional
        λ, requests/s the fleet must serve.
    refine : int, default 3
        How many of the best layouts ``recommend`` sizes (0: screen only).

    Returns
    -------
    Plan
        Candidates best first (one per layout), the fleet, the Pareto front.

    Raises
    ------
    InputError
        Nothing fits the constraints, or bad options.
    """
    start = time.perf_counter()
    base = base or Deployment()
    space = space or PlanSpace()
    if gpu_budget is not None and (isinstance(gpu_budget, bool) or gpu_budget < 1):
        raise InputError(f"gpu budget must be an integer >= 1 GPUs, got {gpu_budget!r}")
    if rate_per_s is not None and not (math.isfinite(rate_per_s) and rate_per_s > 0):
        raise InputError(f"rate must be a finite number > 0 requests/s, got {rate_per_s!r}")
    decode = _mean_decode_tokens(workload)
    layouts = _enumerate_layouts(
        space,
        base,
        model=model,
        hardware=hardware,
        profile=profile,
        theta_tokens=workload.theta_tokens,
    )
    if not layouts:
        raise InputError(f"no layout of {model} fits the GPUs of {hardware}; allow more GPUs")
    res = screen(
        _screen_inputs(layouts, space),
        theta_tokens=workload.theta_tokens,
        slot_load_std_tokens=workload.slot_load_std_tokens,
        kv_quantile=base.kv_quantile,
    )
    ok = _feasible(res, base, gpu_budget=gpu_budget, rate_per_s=rate_per_s, decode_tokens=decode)
    objective = _served_objective(res.objective, res, rate_per_s, decode)
    # Equal fleets serve a rate equally well; among them prefer the larger capacity (headroom).
    objective = objective * (
        1.0 + _TIE_BREAK * res.objective / max(float(res.objective.max()), 1.0)
    )
    score = np.where(ok, objective, -np.inf).reshape(len(layouts), -1)
    best_idx = np.argmax(score, axis=1)
    kept = [i for i in np.argsort(-score.max(axis=1), kind="stable") if np.isfinite(score[i].max())]
    if not kept:
        raise InputError(_nothing_fits(base, gpu_budget))
    cands: list[tuple[bool, Candidate]] = []
    terms = _FleetTerms(rate_per_s, decode, gpu_budget)
    for rank, i in enumerate(kept):
        idx = (int(i), *np.unravel_index(best_idx[i], res.batch.shape[1:]))
        cand = _served(_screen_candidate(layouts[i], res, idx), terms)
        if rank < refine:
            try:
                sized = _refined(layouts[i], cand, workload, terms)
            except _SmallerBundleError:
                sized = _rescreen(layouts[i], cand, workload, base, space, terms)
            if sized is not None:
                cand = sized
        cands.append((rank >= refine, cand))
    # The layouts sized by recommend are the answer, ranked by its numbers; the rest follow
    # as the screen ranked them.
    cands.sort(key=lambda t: (t[0], -t[1].objective, t[1].gpus))
    ranked = [c for _, c in cands]
    # The Pareto front shows the TPOT trade-off, so it ignores the TPOT targets.
    free = base.replace(tpot_target_s=None, tpot_p99_target_s=None)
    fleet = None
    if rate_per_s is not None and decode is not None:
        top = ranked[0]
        fleet = fleet_for(top.tokens_per_s, top.gpus, rate_per_s, decode)
    return Plan(
        candidates=tuple(ranked),
        fleet=fleet,
        pareto=_pareto(
            res,
            _feasible(
                res, free, gpu_budget=gpu_budget, rate_per_s=rate_per_s, decode_tokens=decode
            ),
        ),
        n_screened=int(res.batch.size),
        n_layouts=len(layouts),
        elapsed_s=time.perf_counter() - start,
    )


def _mean_decode_tokens(workload: Workload) -> float | None:
    """E[D] from the trace (or the fixed OSL); None for a workload given by moments."""
    if workload.trace is None:
        return None
    return float(np.mean(workload.trace.decode_tokens))


def _nothing_fits(base: Deployment, gpu_budget: int | None) -> str:
    limits = []
    if base.tpot_target_s is not None:
        limits.append(f"TPOT {base.tpot_target_s * 1e3:g} ms")
    if base.tpot_p99_target_s is not None:
        limits.append(f"TPOT p99 {base.tpot_p99_target_s * 1e3:g} ms")
    if gpu_budget is not None:
        limits.append(f"{gpu_budget} GPUs")
    what = ", ".join(limits) or "KV memory"
    return f"no layout meets {what}; relax a target or allow more GPUs"
