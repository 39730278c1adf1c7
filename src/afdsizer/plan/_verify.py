"""Verify before you buy: the open-loop simulator on a planned bundle at its share of the rate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from afdsizer.cost import load_model_spec
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.plan._adapter import layout_coefficients, operating_point_coefficients
from afdsizer.plan._search import Candidate
from afdsizer.sim import SimConfig, simulate
from afdsizer.workload import Workload

__all__ = ["Verification", "verify_candidate"]

DEFAULT_VERIFY_STEPS = 20_000
"""Simulated decode steps per candidate: enough steps for a stable p99 of the step time."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    """Open-loop simulation of one bundle of a candidate, beside the closed form.

    Attributes
    ----------
    arrivals : {"poisson", "trace"}
        Arrival process (the trace's own timestamps, rescaled to the bundle's share).
    rate_per_s : float
        λ/bundles, requests/s one bundle receives.
    tpot_p50_s, tpot_p99_s, tpot_mean_s : float
        Simulated time per output token, s.
    queue_delay_mean_s, queue_delay_p99_s : float
        Time a request waits for a slot, s.
    slot_occupancy : float
        Mean share of slots in use.
    closed_form_tpot_s, closed_form_tpot_p99_s : float
        The plan's E[τ] and p99 with every slot full, s.
    completed_requests : int
        Requests that finished in the measured window.
    """

    arrivals: str
    rate_per_s: float
    tpot_p50_s: float
    tpot_p99_s: float
    tpot_mean_s: float
    queue_delay_mean_s: float
    queue_delay_p99_s: float
    slot_occupancy: float
    closed_form_tpot_s: float
    closed_form_tpot_p99_s: float
    completed_requests: int


def verify_candidate(
    candidate: Candidate,
    workload: Workload,
    *,
    model: str | Path,
    hardware: str | Path,
    base: Deployment,
    rate_per_s: float,
    bundles: int,
    profile: Path | None = None,
    arrivals: str = "poisson",
    steps: int = DEFAULT_VERIFY_STEPS,
    seed: int = 0,
) -> Verification:
    """Simulate one bundle of ``candidate`` receiving λ/bundles requests/s (open loop).

    The bundle's r·w workers of b slots each (w = g_A under DP attention) step the same
    pipeline the plan assumed; requests come from the trace, Poisson or at the trace's own
    timestamps scaled to the bundle's share of the rate.

    Raises
    ------
    InputError
        A workload without a trace, or trace arrivals without timestamps.
    """
    trace = workload.trace
    if trace is None:
        raise InputError("--verify needs requests to simulate: give --trace or --isl/--osl")
    dep = candidate.deployment(base)
    if candidate.source == "recommend":
        # The coefficients the closed form was computed with (t_F at its operating point).
        coeffs = operating_point_coefficients(
            model=model, hardware=hardware, deployment=dep, profile=profile,
            tokens_per_pass=candidate.ratio * candidate.batch / dep.microbatches,
            slot_context_tokens=workload.theta_tokens,
        )  # fmt: skip
    else:
        coeffs = layout_coefficients(
            model=model, hardware=hardware, deployment=dep, profile=profile,
            slot_context_tokens=workload.theta_tokens,
        )  # fmt: skip
    workers = dep.workers_per_instance
    share = rate_per_s / bundles
    scale = 1.0
    if arrivals == "trace":
        if trace.arrival_s is None or len(trace.arrival_s) < 2:
            raise InputError("--verify with trace arrivals needs a trace with timestamps")
        span_s = float(np.ptp(trace.arrival_s))
        scale = (len(trace.arrival_s) / span_s) / share  # stretch time to the bundle's share
    elif arrivals != "poisson":
        raise InputError(f"arrivals must be poisson or trace, got {arrivals!r}")
    config = SimConfig(
        ratio=candidate.ratio * workers,
        batch=candidate.batch // workers,
        steps=steps,
        seed=seed,
        pipeline="overlapped" if dep.resolved_pipeline == "overlapped" else "microbatch",
        microbatches=dep.microbatches,
        layers=dep.layers or load_model_spec(model).num_layers,
        arrivals="trace" if arrivals == "trace" else "poisson",
        arrival_rate_per_s=share if arrivals == "poisson" else None,
        trace_time_scale=scale,
        kv_capacity_tokens=coeffs.kv_capacity_tokens,
    )
    res = simulate(
        trace.prompt_tokens,
        trace.decode_tokens,
        coeffs,
        config,
        arrival_s=trace.arrival_s if arrivals == "trace" else None,
    )
    return Verification(
        arrivals=arrivals,
        rate_per_s=share,
        tpot_p50_s=res.tpot_p50_s,
        tpot_p99_s=res.tpot_p99_s,
        tpot_mean_s=res.tpot_mean_s,
        queue_delay_mean_s=res.queue_delay_mean_s,
        queue_delay_p99_s=res.queue_delay_p99_s,
        slot_occupancy=res.slot_occupancy,
        closed_form_tpot_s=candidate.tpot_s,
        closed_form_tpot_p99_s=candidate.tpot_p99_s,
        completed_requests=res.completed_requests,
    )
