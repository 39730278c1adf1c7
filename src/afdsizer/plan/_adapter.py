"""The one place the plan calls the cost stage and the sizing function (DESIGN.md §7).

``plan`` sizes every layout it keeps with :func:`afdsizer.theory.recommend` — the same
function ``size`` calls, so the same inputs give the same r everywhere. Two contracts are in
flight on main (issue 10): ``recommend(coefficients, workload, deployment)`` and
``cost_coefficients(..., deployment=deployment)``. This module detects which signature is
installed and adapts; when the new ones land, nothing else in the plan changes.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from functools import cache
from pathlib import Path
from typing import Any

from afdsizer.cost import CostCoefficients, cost_coefficients
from afdsizer.deployment import Deployment
from afdsizer.theory import recommend
from afdsizer.workload import Workload

__all__ = ["Sized", "layout_coefficients", "size_layout"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Sized:
    """What the sizing function says about one layout (the Recommendation fields plan uses).

    Attributes
    ----------
    ratio : int
        r, Attention instances per FFN instance.
    batch : int
        B, slots per Attention instance.
    throughput_per_gpu : float
        r·B/((r·g_A + g_F)·E[τ]), tokens/s per GPU.
    step_time_s : float
        E[τ], the expected TPOT, s.
    tpot_p99_s : float or None
        99th percentile of the step time, s (None where the sizing function gives none).
    regime : str
        Attention-, communication- or FFN-bound.
    gpus_per_bundle : int
        r·g_A + g_F.
    source : str
        ``"recommend"``.
    neighbours : tuple of Sized
        The other rows of recommend's Λ(r) table at the same B (r_int − 4 … r_int + 4), for a
        fleet that needs a smaller bundle than the per-GPU optimum.
    """

    ratio: int
    batch: int
    throughput_per_gpu: float
    step_time_s: float
    tpot_p99_s: float | None
    regime: str
    gpus_per_bundle: int
    source: str = "recommend"
    neighbours: tuple[Sized, ...] = ()


@cache
def _params(func: Any) -> frozenset[str]:
    return frozenset(inspect.signature(func).parameters)


def new_contract() -> bool:
    """Whether the installed ``recommend`` takes ``(coefficients, workload, deployment)``."""
    return "deployment" in _params(recommend)


@functools.lru_cache(maxsize=4096)
def layout_coefficients(
    *,
    model: str | Path,
    hardware: str | Path,
    deployment: Deployment,
    profile: Path | None = None,
) -> CostCoefficients:
    """α, β of one *worker* of the layout: the instance under TP, one GPU under DP attention.

    Cached: the search asks again for every window and every microbatch count.

    Raises
    ------
    InputError
        From the cost stage (unknown preset, weights that do not fit, ...).
    """
    if "deployment" in _params(cost_coefficients):
        kwargs: dict[str, Any] = {"deployment": deployment}
    else:
        # Pre-issue-10 cost stage: a DP attention worker is one GPU with all the weights.
        attn = 1 if deployment.attn_parallel == "dp" else deployment.attn_gpus
        kwargs = {
            "attn_gpus": attn,
            "ffn_gpus": deployment.ffn_gpus,
            "kv_dtype": deployment.kv_dtype,
        }
    return cost_coefficients(model=model, hardware=hardware, profile=profile, **kwargs)


def size_layout(
    coefficients: CostCoefficients, workload: Workload, deployment: Deployment
) -> Sized | None:
    """Size (B, r) for one layout with ``recommend``; None where it cannot (old contract).

    Under the pre-issue-10 ``recommend`` only the paper's overlapped, single-worker instance
    (TP attention, m = 1, overlapped pipeline) is sizable; the caller then keeps its screen.
    """
    # Typed as Any: this module runs under either signature while issue 10 lands.
    sizing: Any = recommend
    if new_contract():
        rec = sizing(coefficients, workload, deployment)
        rows = tuple(
            Sized(
                ratio=int(row.ratio),
                batch=int(rec.batch),
                throughput_per_gpu=float(row.throughput_per_gpu),
                step_time_s=float(row.step_time_s),
                tpot_p99_s=float(row.step_time_p99_s),
                regime=str(rec.regime),
                gpus_per_bundle=int(row.gpus),
            )
            for row in rec.ratio_table
            if row.ratio != rec.r_int and row.meets_tpot is not False
        )
        return Sized(
            ratio=int(rec.r_int),
            batch=int(rec.batch),
            throughput_per_gpu=float(rec.throughput_per_gpu),
            step_time_s=float(rec.step_time_s),
            tpot_p99_s=None if rec.tpot_p99_s is None else float(rec.tpot_p99_s),
            regime=str(rec.regime),
            gpus_per_bundle=int(rec.gpus_per_bundle),
            neighbours=rows,
        )
    overlapped = deployment.resolved_pipeline == "overlapped" and deployment.microbatches == 1
    if deployment.workers_per_instance != 1 or not overlapped:
        return None
    rec = sizing(
        coefficients,
        theta_tokens=workload.theta_tokens,
        slot_load_std_tokens=workload.slot_load_std_tokens,
        batch=deployment.fixed_batch,
        kv_quantile=deployment.kv_quantile,
        tpot_target_s=deployment.tpot_target_s,
    )
    gpus = deployment.gpus_per_bundle(rec.r_int)
    return Sized(
        ratio=int(rec.r_int),
        batch=int(rec.batch),
        throughput_per_gpu=rec.r_int * rec.batch / (gpus * rec.step_time_s),
        step_time_s=float(rec.step_time_s),
        tpot_p99_s=None,
        regime=str(rec.regime),
        gpus_per_bundle=gpus,
    )
