"""Independent oracles for report tests: docs/design.md formulas written out by hand."""

from __future__ import annotations

import numpy as np

from afdsizer.cost import CostCoefficients
from afdsizer.report import RatioCurves


def mean_field_curves(
    coefficients: CostCoefficients,
    *,
    batch: int,
    theta_tokens: float,
    r_max: int = 0,
    ratios: np.ndarray | None = None,
) -> RatioCurves:
    """Mean-field Λ(r) from docs/design.md §4 written out by hand (no barrier: both curves equal).

    At ``ratios`` when given, else at r = 1 … r_max.
    """
    r = np.arange(1, r_max + 1, dtype=np.float64) if ratios is None else np.asarray(ratios)
    c = coefficients
    t_a = np.full_like(r, c.alpha_attn_s + c.beta_attn_s_per_token * batch * theta_tokens)
    t_c = np.full_like(r, coefficients.comm_time_s(batch))
    t_f = coefficients.ffn_time_s(r * batch)
    tau = np.maximum(np.maximum(t_a, t_c), t_f)
    lam = r * batch / ((r + 1) * tau)
    return RatioCurves(
        ratios=r,
        throughput_mean_field=lam,
        throughput_barrier=lam,
        attention_time_s=t_a,
        attention_time_barrier_s=t_a,
        comm_time_s=t_c,
        ffn_time_s=t_f,
        step_time_s=tau,
        attention_idle=1 - t_a / tau,
        ffn_idle=1 - t_f / tau,
    )
