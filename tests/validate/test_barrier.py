"""Tests of the empirical barrier: stationary worker-load sampling and exact order statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.validate import empirical_barrier, sample_worker_loads
from afdsizer.validate._barrier import _expected_max_weights

COEFFS = CostCoefficients(
    alpha_attn_s=2e-3,
    beta_attn_s_per_token=1e-7,
    alpha_comm_s=1e-4,
    beta_comm_s_per_token=1e-7,
    alpha_ffn_s=4e-3,
    beta_ffn_s_per_token=2e-5,
)


def test_order_statistic_weights_match_enumeration() -> None:
    """E[max of r draws] from the empirical weights equals enumerating all n^r draws."""
    x = np.array([1.0, 4.0, 6.0, 10.0])
    for r in (1, 2, 3):
        brute = np.mean([max(c) for c in itertools.product(x, repeat=r)])
        assert float(_expected_max_weights(x.size, r) @ x) == pytest.approx(brute, rel=1e-12)


def test_fixed_lengths_slot_load_is_uniform() -> None:
    """With fixed P and D a slot's stationary load is uniform on P … P+D−1 (mean P + (D−1)/2)."""
    P, D, B = 100, 11, 3
    loads = sample_worker_loads(np.full(5, P), np.full(5, D), batch=B, n_samples=40_000, seed=1)
    var_slot = (D * D - 1) / 12  # discrete uniform on D values
    assert loads.mean() == pytest.approx(B * (P + (D - 1) / 2), rel=1e-3)
    assert loads.var() == pytest.approx(B * var_slot, rel=0.05)


def test_length_biased_choice_matches_theta() -> None:
    """Mean of sampled loads is B·θ with θ = E[P·D + D(D−1)/2]/E[D] (renewal–reward)."""
    P = np.array([10, 1000])
    D = np.array([1, 99])
    theta = float(np.mean(P * D + D * (D - 1) / 2) / np.mean(D))
    loads = sample_worker_loads(P, D, batch=4, n_samples=50_000, seed=3)
    assert loads.mean() == pytest.approx(4 * theta, rel=5e-3)


def test_zero_spread_reduces_to_mean_field() -> None:
    """Constant worker loads give the mean-field step time max(t_A, t_C, t_F(r)) at every r."""
    B, load = 8, 50_000.0
    eb = empirical_barrier(COEFFS, np.full(10, load), batch=B, r_max=40)
    t_attn = COEFFS.attention_time_s(load)
    expected = np.maximum(t_attn, COEFFS.ffn_time_s(eb.ratios * float(B)))
    np.testing.assert_allclose(eb.step_time_s, np.maximum(expected, COEFFS.comm_time_s(B)))
    r_attention = (t_attn - COEFFS.alpha_ffn_s) / (COEFFS.beta_ffn_s_per_token * B)
    assert eb.knee_ratio == pytest.approx(r_attention, abs=1e-9)
    assert eb.best_ratio in (int(np.floor(r_attention)), int(np.ceil(r_attention)))


def test_spread_raises_step_time_and_lowers_ratio() -> None:
    """A spread of worker loads raises E[τ] and moves the knee above the mean-field r_A."""
    rng = np.random.default_rng(0)
    B = 8
    loads = rng.gamma(2.0, 25_000.0, size=5_000)
    spread = empirical_barrier(COEFFS, loads, batch=B, r_max=60)
    flat = empirical_barrier(COEFFS, np.full(10, loads.mean()), batch=B, r_max=60)
    assert np.all(spread.step_time_s >= flat.step_time_s - 1e-15)
    assert np.all(np.diff(spread.attention_max_time_s) > 0)
    assert spread.knee_ratio > flat.knee_ratio  # the FFN must catch up with the slowest worker


def test_sample_worker_loads_rejects_zero_decode() -> None:
    """D = 0 is not a request."""
    with pytest.raises(InputError, match="D >= 1"):
        sample_worker_loads([1, 2], [1, 0], batch=2)


def test_empirical_barrier_predicts_simulated_throughput() -> None:
    """On the bundled conversation trace, Λ from the empirical worker-load law matches the sim."""
    from afdsizer.sim import SimConfig, simulate
    from afdsizer.validate import default_cases
    from afdsizer.workload import bundled_trace_path, load_trace

    trace = load_trace(bundled_trace_path("azure_conv_2023"))
    case = next(c for c in default_cases() if c.name == "dense70b-h100-b16")
    B = case.batch
    loads = sample_worker_loads(trace.prompt_tokens, trace.decode_tokens, batch=B, seed=0)
    eb = empirical_barrier(case.coefficients, loads, batch=B, r_max=30)
    for r in (4, 20, 30):
        config = SimConfig(ratio=r, batch=B, steps=6000, warmup_steps=1000, seed=1)
        sim = simulate(trace.prompt_tokens, trace.decode_tokens, case.coefficients, config)
        predicted = float(eb.throughput_per_instance[r - 1])
        assert predicted == pytest.approx(
            sim.throughput_per_instance, abs=4 * sim.throughput_stderr + 0.003 * predicted
        )
