"""recommend(): the Recommendation's fields agree with each other and with the parts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.theory import (
    Recommendation,
    expected_max_std_normal,
    expected_step_time_s,
    mean_field_rule,
    recommend,
    sensitivity_grid,
    throughput_barrier,
)

BASE = CostCoefficients(
    alpha_attn_s=1e-3,
    beta_attn_s_per_token=1e-8,
    alpha_comm_s=1e-4,
    beta_comm_s_per_token=1e-7,
    alpha_ffn_s=5e-4,
    beta_ffn_s_per_token=1e-6,
)

CONTRACT_KEYS = {
    "r_star",
    "r_star_mean_field",
    "r_int",
    "regime",
    "r_attention",
    "r_communication",
    "r_peak",
    "batch",
    "throughput_per_instance",
    "step_time_s",
    "attention_idle",
    "ffn_idle",
    "barrier_overhead",
    "theta",
    "t_attn_s",
    "t_comm_s",
    "t_ffn_s",
    "slot_load_std",
    "rounding_loss",
    "ratio_table",
}


def test_fields_cover_the_json_contract() -> None:
    """Every key promised in docs/architecture.md and the brief is a Recommendation field."""
    names = {f.name for f in dataclasses.fields(Recommendation)}
    assert names >= CONTRACT_KEYS


def test_hand_worked_attention_case_without_barrier() -> None:
    """σ = 0, B = 100, θ = 1000: t_A = 2 ms, r_A = (2 − 0.5)/0.1 = 15 exactly, FFN idle 0 at 15."""
    rec = recommend(BASE, theta_tokens=1000.0, slot_load_std_tokens=0.0, batch=100)
    assert rec.regime == "attention"
    assert rec.r_star == rec.r_star_mean_field == pytest.approx(15.0)
    assert rec.r_int == 15
    assert rec.t_attn_s == pytest.approx(2e-3)
    assert rec.t_ffn_s == pytest.approx(5e-4 + 1e-6 * 1500)
    assert rec.step_time_s == pytest.approx(2e-3)
    assert rec.throughput_per_instance == pytest.approx(15 * 100 / (16 * 2e-3))
    assert rec.ffn_idle == pytest.approx(0.0, abs=1e-12)
    assert rec.attention_idle == pytest.approx(0.0, abs=1e-12)
    assert rec.barrier_overhead == 0.0
    assert rec.barrier_throughput_loss == pytest.approx(0.0, abs=1e-12)
    assert rec.rounding_loss == pytest.approx(0.0, abs=1e-12)


def test_recommendation_is_self_consistent_with_barrier() -> None:
    """With σ > 0 the fields agree with the public functions they summarise."""
    c = dataclasses.replace(BASE, kv_capacity_tokens=150_000.0)
    theta, sigma = 1226.5, 712.9
    rec = recommend(c, theta_tokens=theta, slot_load_std_tokens=sigma)
    B, r = rec.batch, rec.r_int
    assert rec.batch_limit == "kv_capacity"
    assert rec.kv_load_quantile_tokens <= 150_000.0
    tau = float(
        expected_step_time_s(c, theta_tokens=theta, slot_load_std_tokens=sigma, batch=B, ratio=r)
    )
    assert rec.step_time_s == pytest.approx(tau, rel=1e-12)
    assert rec.throughput_per_instance == pytest.approx(r * B / ((r + 1) * tau), rel=1e-12)
    assert rec.bundle_tokens_per_s == pytest.approx(r * B / tau, rel=1e-12)
    sd = c.beta_attn_s_per_token * math.sqrt(B) * sigma
    slowest = rec.t_attn_s + sd * float(expected_max_std_normal(r))
    assert rec.t_attn_slowest_s == pytest.approx(slowest, rel=1e-12)
    assert rec.barrier_overhead == pytest.approx(1 - rec.t_attn_s / slowest, rel=1e-12)
    assert 0 < rec.barrier_throughput_loss < 0.2
    # r_int is the best row of the table, and r_star lies within one of it.
    best_row = max(rec.ratio_table, key=lambda row: row.throughput_per_instance)
    assert best_row.ratio == r
    assert abs(rec.r_star - r) <= 1.0
    assert 0.0 <= rec.rounding_loss < 0.05
    lam_star = throughput_barrier(
        c, theta_tokens=theta, slot_load_std_tokens=sigma, batch=B, ratio=rec.r_star
    )
    assert float(lam_star) >= rec.throughput_per_instance * (1 - 1e-12)
    assert rec.r_star_mean_field == mean_field_rule(c, theta_tokens=theta, batch=B).r_star


def test_tpot_target_is_met_and_marked_in_table() -> None:
    """With a TPOT target the chosen step time meets it and the table flags rows that do not."""
    rec = recommend(
        BASE, theta_tokens=1000.0, slot_load_std_tokens=800.0, batch=100, tpot_target_s=2.1e-3
    )
    assert rec.step_time_s <= 2.1e-3
    flags = {row.ratio: row.meets_tpot for row in rec.ratio_table}
    assert flags[rec.r_int] is True
    assert any(flag is False for flag in flags.values())
    assert rec.r_star <= rec.r_int + 1


def test_prices_switch_the_objective() -> None:
    """Prices make the objective tokens per dollar = 3600·r·B/((r·p_A + p_F)·E[τ])."""
    rec = recommend(
        BASE,
        theta_tokens=1000.0,
        slot_load_std_tokens=500.0,
        batch=32,
        price_attn_per_h=2.0,
        price_ffn_per_h=6.0,
    )
    assert rec.objective == "tokens_per_dollar"
    expected = 3600 * rec.r_int * 32 / ((2.0 * rec.r_int + 6.0) * rec.step_time_s)
    assert rec.tokens_per_dollar == pytest.approx(expected, rel=1e-12)
    assert all(row.tokens_per_dollar is not None for row in rec.ratio_table)


def test_large_barrier_separates_mean_field_and_barrier_ratios() -> None:
    """Heavy tails and a small B (σ·sqrt(B) large next to B·θ) pull r* well below mean field."""
    rec = recommend(BASE, theta_tokens=1000.0, slot_load_std_tokens=3000.0, batch=16)
    assert rec.r_int < 0.8 * rec.r_star_mean_field
    assert rec.r_attention_barrier > rec.r_attention


def test_errors_from_recommend() -> None:
    """θ <= 0, σ < 0, B = 0 and a B that cannot fit give one-line errors."""
    with pytest.raises(InputError, match="theta_tokens"):
        recommend(BASE, theta_tokens=-1.0, slot_load_std_tokens=1.0)
    with pytest.raises(InputError, match="slot_load_std_tokens"):
        recommend(BASE, theta_tokens=1.0, slot_load_std_tokens=-1.0)
    with pytest.raises(InputError, match="batch"):
        recommend(BASE, theta_tokens=1.0, slot_load_std_tokens=1.0, batch=0)
    c = dataclasses.replace(BASE, kv_capacity_tokens=10_000.0)
    with pytest.raises(
        InputError, match=r"load is 11,000 tokens .*; the largest batch that fits is 10$"
    ):
        recommend(c, theta_tokens=1000.0, slot_load_std_tokens=0.0, batch=11)


def test_sensitivity_grid_follows_the_regimes() -> None:
    """In the Attention regime r* grows linearly with θ; in the FFN regime it ignores θ."""
    grid = sensitivity_grid(BASE, theta_tokens=1000.0, slot_load_std_tokens=500.0, batch=100)
    assert grid.r_star_mean_field.shape == (grid.theta_tokens.size, grid.batch.size)
    j = int(np.flatnonzero(grid.batch == 100)[0])
    column = grid.r_star_mean_field[:, j]
    assert all(reg[j] == "attention" for reg in grid.regime)
    # r_A = (α_A + β_A·B·θ − α_F)/(β_F·B): affine in θ with slope β_A/β_F.
    np.testing.assert_allclose(np.diff(column) / np.diff(grid.theta_tokens), 1e-8 / 1e-6)
    ffn_heavy = dataclasses.replace(BASE, alpha_ffn_s=1.0)
    grid_f = sensitivity_grid(ffn_heavy, theta_tokens=1000.0, slot_load_std_tokens=500.0, batch=100)
    assert all(all(reg == "ffn" for reg in row) for row in grid_f.regime)
    r_peak = np.sqrt(1.0 / (1e-6 * grid_f.batch.astype(float)))  # sqrt(α_F/(β_F·B))
    np.testing.assert_allclose(
        grid_f.r_star_mean_field, np.broadcast_to(r_peak, grid_f.r_star_mean_field.shape)
    )
    assert np.all(grid.r_int >= 1)
