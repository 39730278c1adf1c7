"""Drift: the best layout per time window, and what one fixed layout costs against it."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.plan._adapter import operating_point_coefficients
from afdsizer.plan._search import Candidate, PlanSpace, fleet_for, plan_layouts
from afdsizer.theory import deployment_curve, max_batch_for_kv
from afdsizer.workload import Trace, Workload

__all__ = ["DriftReport", "DriftWindow", "parse_window_s", "plan_drift"]

_UNITS_S = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}
_MIN_REQUESTS_PER_WINDOW = 20
"""Windows with fewer requests than this are merged into the previous one (θ is too noisy)."""


def parse_window_s(text: str) -> float:
    """``"10min"``, ``"600s"``, ``"1h"`` or ``"600"`` (seconds) → seconds.

    Examples
    --------
    >>> parse_window_s("10min"), parse_window_s("1.5h"), parse_window_s("90")
    (600.0, 5400.0, 90.0)
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*", text.lower())
    if match is None or match.group(2) not in ("", *_UNITS_S):
        raise InputError(f"--window must look like 10min, 600s or 1h, got {text!r}")
    value = float(match.group(1)) * _UNITS_S.get(match.group(2), 1.0)
    if not value > 0:
        raise InputError(f"--window must be > 0 s, got {text!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DriftWindow:
    """One window: its load, the layout best for it, and the GPUs each policy uses.

    Attributes
    ----------
    start_s, end_s : float
        Window bounds, s from the trace's first arrival.
    requests : int
        Arrivals in the window.
    rate_per_s : float
        λ of the window, requests/s.
    theta_tokens : float
        θ of the window's requests, tokens.
    best : Candidate
        The best layout for this window alone.
    best_gpus : int
        GPUs of its fleet at the window's rate.
    fixed_gpus : int
        GPUs the fixed layout needs at the window's rate (bundles rescaled).
    fixed_tokens_per_s : float
        Tokens/s of one bundle of the fixed layout under this window's requests (its θ and
        worker-load law, not the whole trace's).
    fixed_batch : int
        B the fixed layout runs in this window: the planned B, or the largest that holds this
        window's KV load when its requests are longer.
    """

    start_s: float
    end_s: float
    requests: int
    rate_per_s: float
    theta_tokens: float
    best: Candidate
    best_gpus: int
    fixed_gpus: int
    fixed_tokens_per_s: float = math.nan
    fixed_batch: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport:
    """Per-window plans against one fixed layout.

    Attributes
    ----------
    window_s : float
        Window length, s.
    fixed : Candidate
        The layout planned once for the whole trace at its peak window rate.
    windows : tuple of DriftWindow
        In time order.
    gpu_hours_reprovisioned : float
        Σ best_gpus·window length: re-provisioning layout and fleet every window.
    gpu_hours_fixed_layout : float
        Σ fixed_gpus·window length: the fixed layout, bundles rescaled every window.
    gpu_hours_fixed_fleet : float
        Peak fixed_gpus over the whole span: the fixed layout provisioned for the peak.
    loss_fixed_layout : float
        1 − reprovisioned/fixed-layout GPU-hours: what keeping one layout costs.
    loss_fixed_fleet : float
        1 − reprovisioned/fixed-fleet GPU-hours.
    """

    window_s: float
    fixed: Candidate
    windows: tuple[DriftWindow, ...]
    gpu_hours_reprovisioned: float
    gpu_hours_fixed_layout: float
    gpu_hours_fixed_fleet: float
    loss_fixed_layout: float
    loss_fixed_fleet: float


def _windows(trace: Trace, window_s: float) -> list[tuple[float, float, np.ndarray]]:
    assert trace.arrival_s is not None
    t = trace.arrival_s - trace.arrival_s.min()
    n = max(1, math.ceil(float(t.max()) / window_s))
    edges = [(k * window_s, (k + 1) * window_s) for k in range(n)]
    out: list[tuple[float, float, np.ndarray]] = []
    for lo, hi in edges:
        idx = np.nonzero((t >= lo) & ((t < hi) | (hi >= t.max())))[0]
        if out and idx.size < _MIN_REQUESTS_PER_WINDOW:
            plo, _, pidx = out[-1]
            out[-1] = (plo, hi, np.concatenate([pidx, idx]))
        elif idx.size:
            out.append((lo, hi, idx))
    return out


def _fixed_layout_in_window(
    fixed: Candidate,
    base: Deployment,
    workload: Workload,
    *,
    model: str | Path,
    hardware: str | Path,
    profile: Path | None,
) -> tuple[float, int]:
    """Tokens/s of one bundle of the fixed layout under a window's requests, and its B there.

    The layout (GPUs, parallelism, m, r) is kept; B is the planned one unless the window's
    longer requests overflow the KV memory, where it is the largest B that holds them (an
    engine admits no more). The step is the one ``recommend`` models, t_F re-linearised at the
    window's r·B/m.

    Raises
    ------
    InputError
        Not one microbatch of the window's requests fits the fixed layout's KV memory.
    """
    deployment = fixed.deployment(base)
    m, k = deployment.microbatches, deployment.workers_per_instance

    def coefficients_at(batch: int) -> CostCoefficients:
        return operating_point_coefficients(
            model=model, hardware=hardware, deployment=deployment.replace(batch=batch),
            tokens_per_pass=fixed.ratio * batch / m, profile=profile,
            slot_context_tokens=workload.theta_tokens,
        )  # fmt: skip

    batch = fixed.batch
    coefficients = coefficients_at(batch)
    per_worker = max_batch_for_kv(
        coefficients,
        theta_tokens=workload.theta_tokens,
        slot_load_std_tokens=workload.slot_load_std_tokens,
        kv_quantile=deployment.kv_quantile,
    )
    if per_worker is not None and (per_worker // m) * m * k < batch:
        batch = (per_worker // m) * m * k
        if batch < m * k:
            raise InputError(
                f"the fixed layout ({fixed.attn_gpus}A {fixed.attn_parallel}, m = {m}) holds no "
                f"microbatch of a window's requests (θ = {workload.theta_tokens:,.0f} tokens)"
            )
        coefficients = coefficients_at(batch)  # t_F at the smaller batch's r·B/m
    curve = deployment_curve(
        coefficients, workload, deployment.replace(batch=batch), batch=batch, ratio=[fixed.ratio]
    )
    return fixed.ratio * batch / float(curve.step_time_s[0]), batch


def plan_drift(
    trace: Trace,
    *,
    window_s: float,
    model: str | Path,
    hardware: str | Path,
    base: Deployment,
    space: PlanSpace | None = None,
    profile: Path | None = None,
    gpu_budget: int | None = None,
    rate_scale: float = 1.0,
    refine: int = 1,
    workload: Workload | None = None,
) -> DriftReport:
    """Plan each window of a timestamped trace on its own, and one layout for all of them.

    The fixed layout is planned on the whole trace at the peak window's rate (what an operator
    provisions once); each window then needs ⌈λ_w/capacity⌉ of its bundles. ``rate_scale``
    multiplies every window's rate (plan a larger service with the same diurnal shape);
    ``refine`` layouts per plan are sized by ``recommend`` (0: the screen alone, fastest).
    ``workload`` is the whole trace's, when the caller has it (its worker-load draws are reused).

    Raises
    ------
    InputError
        The trace has no timestamps, or a window has no feasible layout.
    """
    if trace.arrival_s is None:
        raise InputError("--window needs a trace with arrival timestamps")
    parts = _windows(trace, window_s)
    rates = [rate_scale * idx.size / (hi - lo) for lo, hi, idx in parts]
    decode_all = float(np.mean(trace.decode_tokens))
    fixed_plan = plan_layouts(
        workload or Workload.from_trace(trace), model=model, hardware=hardware, base=base,
        space=space, profile=profile, gpu_budget=gpu_budget, rate_per_s=max(rates), refine=refine,
    )  # fmt: skip
    fixed = fixed_plan.candidates[0]
    windows = []
    for (lo, hi, idx), rate in zip(parts, rates, strict=True):
        sub = Trace(
            prompt_tokens=trace.prompt_tokens[idx],
            decode_tokens=trace.decode_tokens[idx],
            arrival_s=trace.arrival_s[idx],
            source=f"{trace.source}[{lo:.0f}s,{hi:.0f}s)",
        )
        work = Workload.from_trace(sub)
        best_plan = plan_layouts(
            work, model=model, hardware=hardware, base=base, space=space, profile=profile,
            gpu_budget=gpu_budget, rate_per_s=rate, refine=refine,
        )  # fmt: skip
        best = best_plan.candidates[0]
        assert best_plan.fleet is not None
        decode = float(np.mean(sub.decode_tokens))
        fixed_tokens, fixed_batch = _fixed_layout_in_window(
            fixed, base, work, model=model, hardware=hardware, profile=profile
        )
        fixed_fleet = fleet_for(fixed_tokens, fixed.gpus, rate, decode or decode_all)
        windows.append(
            DriftWindow(
                start_s=lo,
                end_s=hi,
                requests=int(idx.size),
                rate_per_s=rate,
                theta_tokens=work.theta_tokens,
                best=best,
                best_gpus=best_plan.fleet.gpus,
                fixed_gpus=fixed_fleet.gpus,
                fixed_tokens_per_s=fixed_tokens,
                fixed_batch=fixed_batch,
            )
        )
    hours = [(w.end_s - w.start_s) / 3600.0 for w in windows]
    reprov = sum(w.best_gpus * h for w, h in zip(windows, hours, strict=True))
    fixed_layout = sum(w.fixed_gpus * h for w, h in zip(windows, hours, strict=True))
    fixed_fleet_h = max(w.fixed_gpus for w in windows) * sum(hours)
    return DriftReport(
        window_s=window_s,
        fixed=fixed,
        windows=tuple(windows),
        gpu_hours_reprovisioned=reprov,
        gpu_hours_fixed_layout=fixed_layout,
        gpu_hours_fixed_fleet=fixed_fleet_h,
        loss_fixed_layout=max(0.0, 1.0 - reprov / fixed_layout),
        loss_fixed_fleet=max(0.0, 1.0 - reprov / fixed_fleet_h),
    )
