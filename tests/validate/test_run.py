"""End-to-end checks of validate_case on synthetic workloads with a closed-form answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.validate import CostCase, ValidationSettings, validate_case

SETTINGS = ValidationSettings(
    steps=400, warmup_steps=40, seeds=(0, 1), batches=4, coarse_points=6, refine_points=3,
)  # fmt: skip


def _deterministic_trace(prompt: int) -> tuple[np.ndarray, np.ndarray]:
    """Every request has P = prompt, D = 1: each slot attends to exactly P tokens every step."""
    return np.full(50, prompt, dtype=np.int64), np.ones(50, dtype=np.int64)


def _lam(r: int, c: CostCoefficients, batch: int, load: float) -> float:
    """Closed-form Λ(r) = r·B/((r+1)·max(t_A, t_C, t_F(r))) with a constant worker load."""
    tau = max(c.attention_time_s(load), c.comm_time_s(batch, r), c.ffn_time_s(r * batch))
    return float(r * batch / ((r + 1) * tau))


def test_ffn_bound_sharp_peak_found_exactly() -> None:
    """FFN-bound with σ = 0: r_sim is the integer maximiser of r/((r+1)(α_F + β_F·r·B))."""
    B, P = 4, 100
    c = CostCoefficients(
        alpha_attn_s=1e-3, beta_attn_s_per_token=1e-7, alpha_comm_s=1e-4,
        beta_comm_s_per_token=1e-7, alpha_ffn_s=2e-2, beta_ffn_s_per_token=1.25e-4,
    )  # fmt: skip
    r_peak = math.sqrt(c.alpha_ffn_s / (c.beta_ffn_s_per_token * B))  # √40 = 6.32
    truth = max(range(1, 200), key=lambda r: _lam(r, c, B, B * P))
    prompt, decode = _deterministic_trace(P)
    res = validate_case(
        "fixed",
        prompt,
        decode,
        CostCase(name="sharp", coefficients=c, batch=B, description="test"),
        settings=SETTINGS,
    )
    assert res.regime == "ffn"
    assert res.r_theory_mean_field == pytest.approx(r_peak, rel=1e-6)
    assert res.r_sim == truth == res.r_theory_int
    assert res.throughput_loss == pytest.approx(0.0, abs=1e-12)
    # σ = 0: no noise, so no other ratio is tied and the CI has zero width.
    assert res.r_sim_tied == (truth,)
    assert res.rel_error == pytest.approx(abs(r_peak - truth) / truth, rel=1e-6)
    assert res.throughput_sim_best == pytest.approx(_lam(truth, c, B, B * P), rel=1e-9)


def test_attention_bound_knee_at_r_attention() -> None:
    """σ = 0, Attention-bound: the FFN idle curve's knee is r_A = (t_A − α_F)/(β_F·B)."""
    B, P = 8, 1000
    c = CostCoefficients(
        alpha_attn_s=2e-3, beta_attn_s_per_token=2.5e-7, alpha_comm_s=1e-4,
        beta_comm_s_per_token=1e-7, alpha_ffn_s=3e-3, beta_ffn_s_per_token=2e-5,
    )  # fmt: skip
    r_attention = (c.attention_time_s(B * P) - c.alpha_ffn_s) / (c.beta_ffn_s_per_token * B)
    prompt, decode = _deterministic_trace(P)
    res = validate_case(
        "fixed",
        prompt,
        decode,
        CostCase(name="attn", coefficients=c, batch=B, description="test"),
        settings=SETTINGS,
    )
    assert res.regime == "attention"
    assert res.knee == pytest.approx(r_attention, rel=0.01)
    assert res.knee_theory_mean_field == pytest.approx(r_attention, rel=1e-9)
    truth = max(range(1, 200), key=lambda r: _lam(r, c, B, B * P))
    assert res.r_sim == truth
    assert res.r_theory_int == truth  # the empirical barrier, what size --trace deploys
    # Baselines are simulated on the same draws; 1:1 leaves the FFN idle most of the step.
    one = next(b for b in res.baselines if b.name == "one-to-one")
    assert one.ratio == 1
    assert one.throughput_loss == pytest.approx(1 - _lam(1, c, B, B * P) / _lam(truth, c, B, B * P))
    assert one.ffn_idle == pytest.approx(1 - c.ffn_time_s(B) / c.attention_time_s(B * P))


def test_settings_reject_warmup_beyond_steps() -> None:
    """Warm-up must leave measured steps."""
    with pytest.raises(InputError, match="steps must exceed warmup_steps"):
        ValidationSettings(steps=100, warmup_steps=100)
