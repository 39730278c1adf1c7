"""The one place the plan calls the cost stage and the sizing function (docs/design.md §7).

``plan`` sizes every layout it keeps exactly as ``afdsizer size`` does: through
:mod:`afdsizer._sizing`, with the deployment's coefficients (``resolve_coefficients``) and
``recommend_at_operating_point`` — :func:`afdsizer.theory.recommend` with t_F re-linearised at
the r·B/m it recommends — so ``size`` on a planned layout gives the same r, B and tokens/s per
GPU.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from afdsizer._sizing import (
    SizingInputs,
    recommend_at_operating_point,
    resolve_coefficients,
    roofline_relineariser,
)
from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.workload import Workload

__all__ = ["Sized", "layout_coefficients", "operating_point_coefficients", "size_layout"]


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


@functools.lru_cache(maxsize=4096)
def layout_coefficients(
    *,
    model: str | Path,
    hardware: str | Path,
    deployment: Deployment,
    profile: Path | None = None,
    slot_context_tokens: float | None = None,
) -> CostCoefficients:
    """α, β of one *worker* of the layout: the instance under TP, one GPU under DP attention.

    Cached: the search asks again for every window and every microbatch count.

    Raises
    ------
    InputError
        From the cost stage (unknown preset, weights that do not fit, ...).
    """
    return resolve_coefficients(
        deployment=deployment,
        model=model,
        hardware=hardware,
        profile=profile,
        slot_context_tokens=slot_context_tokens,
    )


def operating_point_coefficients(
    *,
    model: str | Path,
    hardware: str | Path,
    deployment: Deployment,
    tokens_per_pass: float,
    profile: Path | None = None,
    slot_context_tokens: float | None = None,
) -> CostCoefficients:
    """The coefficients ``size`` settles on for an answer with r·B/m = ``tokens_per_pass``.

    t_F re-linearised around the FFN batch of one pass, as ``recommend_at_operating_point``
    does; a profile's fitted coefficients as they are.
    """
    relinearise = roofline_relineariser(
        deployment, model, hardware, profile, None, slot_context_tokens
    )
    if relinearise is None:
        return layout_coefficients(
            model=model,
            hardware=hardware,
            deployment=deployment,
            profile=profile,
            slot_context_tokens=slot_context_tokens,
        )
    return relinearise(tokens_per_pass)


def size_layout(
    coefficients: CostCoefficients,
    workload: Workload,
    deployment: Deployment,
    *,
    model: str | Path,
    hardware: str | Path,
    profile: Path | None = None,
) -> Sized:
    """Size (B, r) for one layout as ``afdsizer size`` does (module notes).

    Raises
    ------
    InputError
        From ``recommend`` (nothing meets the targets for this layout).
    """
    inputs = SizingInputs(
        workload=workload,
        coefficients=coefficients,
        deployment=deployment,
        relinearise=roofline_relineariser(
            deployment, model, hardware, profile, None, workload.theta_tokens
        ),
    )
    rec, _ = recommend_at_operating_point(inputs)
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
