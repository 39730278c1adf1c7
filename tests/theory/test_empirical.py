"""The empirical barrier: exact order statistics of sampled worker loads, in E[τ] and the sizing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import special

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.theory import (
    attention_idle_fraction,
    barrier_curve,
    best_integer_ratio,
    expected_max_empirical,
    expected_step_time_empirical_s,
    expected_step_time_s,
    ffn_idle_fraction,
    recommend,
)

COEFFS = CostCoefficients(
    alpha_attn_s=2e-3,
    beta_attn_s_per_token=1e-7,
    alpha_comm_s=1e-4,
    beta_comm_s_per_token=1e-7,
    alpha_ffn_s=4e-3,
    beta_ffn_s_per_token=2e-5,
)


def test_expected_max_matches_enumeration() -> None:
    """E[max of r draws] equals enumerating all n^r equally likely draws."""
    x = np.array([4.0, 1.0, 10.0, 6.0])
    got = expected_max_empirical(x, [1, 2, 3])
    for r, value in zip((1, 2, 3), got, strict=True):
        brute = np.mean([max(c) for c in itertools.product(x, repeat=r)])
        assert float(value) == pytest.approx(brute, rel=1e-12)


@pytest.mark.parametrize("r", [2, 7, 40])
def test_expected_max_matches_monte_carlo(r: int) -> None:
    """E[max over r] from order statistics agrees with a brute-force Monte Carlo of the max."""
    rng = np.random.default_rng(r)
    x = rng.lognormal(0.0, 1.0, size=500)
    draws = rng.choice(x, size=(200_000, r)).max(axis=1)
    stderr = draws.std() / np.sqrt(draws.size)
    assert float(expected_max_empirical(x, r)) == pytest.approx(draws.mean(), abs=5 * stderr)


def test_zero_spread_reduces_to_mean_field() -> None:
    """Constant worker loads give the mean-field step time max(t_A, t_C, t_F(r)) at every r."""
    B, load = 8, 50_000.0
    r = np.arange(1, 41, dtype=np.float64)
    tau = expected_step_time_empirical_s(COEFFS, np.full(10, load), batch=B, ratio=r)
    expected = np.maximum.reduce(
        [np.full(r.shape, COEFFS.attention_time_s(load)), COEFFS.ffn_time_s(r * B)]
    )
    np.testing.assert_allclose(tau, np.maximum(expected, COEFFS.comm_time_s(B)), rtol=1e-12)


@pytest.mark.parametrize(
    ("theta", "sigma", "batch"), [(6000.0, 4000.0, 8), (20_000.0, 30_000.0, 2)]
)
def test_normal_samples_give_the_gaussian_step_time(theta: float, sigma: float, batch: int) -> None:
    """Samples drawn from Normal(B·θ, B·σ²) reproduce the Gaussian E[τ] (quadrature)."""
    # Stratified draws (normal quantiles at the mid-points of n equal bins): the empirical law
    # converges to the normal without Monte Carlo noise.
    n = 200_000
    z = special.ndtri((np.arange(n) + 0.5) / n)
    loads = batch * theta + np.sqrt(batch) * sigma * z
    r = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
    emp = expected_step_time_empirical_s(COEFFS, loads, batch=batch, ratio=r)
    gauss = expected_step_time_s(
        COEFFS, theta_tokens=theta, slot_load_std_tokens=sigma, batch=batch, ratio=r
    )
    np.testing.assert_allclose(emp, gauss, rtol=1e-3)


def test_best_integer_ratio_is_the_brute_force_argmax() -> None:
    """With samples, best_integer_ratio is the arg-max of r·B/((r+1)·E[τ]) over all integers."""
    rng = np.random.default_rng(2)
    B = 8
    loads = rng.gamma(0.7, 60_000.0, size=5_000)
    r = np.arange(1, 400, dtype=np.float64)
    tau = expected_step_time_empirical_s(COEFFS, loads, batch=B, ratio=r)
    brute = int(r[np.argmax(r * B / ((r + 1) * tau))])
    got = best_integer_ratio(
        COEFFS, theta_tokens=loads.mean() / B, slot_load_std_tokens=0.0, batch=B,
        worker_load_samples=loads,
    )  # fmt: skip
    assert got == brute


def test_recommend_with_constant_samples_equals_no_spread() -> None:
    """Samples all equal to B·θ give the σ = 0 recommendation (r_int, r*, E[τ])."""
    B, theta = 8, 40_000.0
    plain = recommend(COEFFS, theta_tokens=theta, slot_load_std_tokens=0.0, batch=B)
    emp = recommend(
        COEFFS, theta_tokens=theta, slot_load_std_tokens=0.0, batch=B,
        worker_load_samples=np.full(50, B * theta),
    )  # fmt: skip
    assert (plain.barrier_model, emp.barrier_model) == ("gaussian", "empirical")
    assert emp.r_int == plain.r_int
    assert emp.r_star == pytest.approx(plain.r_star, rel=1e-6)
    assert emp.step_time_s == pytest.approx(plain.step_time_s, rel=1e-12)
    assert emp.r_star_gaussian == plain.r_star


def test_recommend_skewed_samples_lower_the_ratio() -> None:
    """A right-skewed worker load (same mean and variance) raises E[τ] growth: r* falls."""
    rng = np.random.default_rng(3)
    B, theta, sigma = 4, 10_000.0, 12_000.0
    # Gamma with mean B·θ and variance B·σ²: shape k = (B·θ)²/(B·σ²).
    k = (B * theta) ** 2 / (B * sigma**2)
    loads = rng.gamma(k, B * theta / k, size=40_000)
    gauss = recommend(COEFFS, theta_tokens=theta, slot_load_std_tokens=sigma, batch=B)
    emp = recommend(
        COEFFS, theta_tokens=theta, slot_load_std_tokens=sigma, batch=B, worker_load_samples=loads
    )
    assert emp.r_star_gaussian == gauss.r_star
    assert emp.r_int_gaussian == gauss.r_int
    assert emp.r_star < gauss.r_star
    # The knee: the FFN must catch up with the slowest worker, r = (E[max t_A] − α_F)/(β_F·B).
    slowest = COEFFS.alpha_attn_s + COEFFS.beta_attn_s_per_token * float(
        expected_max_empirical(loads, emp.r_attention_barrier)
    )
    knee = (slowest - COEFFS.alpha_ffn_s) / (COEFFS.beta_ffn_s_per_token * B)
    assert emp.r_attention_barrier == pytest.approx(knee, rel=1e-8)
    assert emp.r_attention_barrier > emp.r_attention


def test_recommend_calls_the_sampler_at_the_chosen_batch() -> None:
    """A callable sampler is called once, with the B that joint sizing chose."""
    import dataclasses

    coeffs = dataclasses.replace(COEFFS, kv_capacity_tokens=400_000.0)
    calls: list[int] = []

    def sampler(b: int) -> np.ndarray:
        calls.append(b)
        return np.full(10, b * 20_000.0)

    rec = recommend(
        coeffs, theta_tokens=20_000.0, slot_load_std_tokens=0.0, worker_load_samples=sampler
    )
    assert calls == [rec.batch]
    assert rec.barrier_model == "empirical"


def test_array_samples_need_a_batch() -> None:
    """An array of samples is the law at one B: without --batch it is refused."""
    with pytest.raises(InputError, match="fixes B: give batch"):
        recommend(
            COEFFS, theta_tokens=1000.0, slot_load_std_tokens=0.0, worker_load_samples=[1.0, 2.0]
        )
    with pytest.raises(InputError, match="worker_load_samples must be a non-empty array"):
        recommend(
            COEFFS, theta_tokens=1000.0, slot_load_std_tokens=0.0, batch=4, worker_load_samples=[]
        )


def test_barrier_curve_agrees_with_each_law_and_with_a_sample_path() -> None:
    """barrier_curve gives the Gaussian functions' values without samples, and with samples the
    order-statistics E[τ]; Λ and the idle fractions follow from E[τ] by their definitions, and the
    empirical E[τ] matches a brute-force Monte Carlo of r draws from the samples."""
    B, theta, sigma = 64, 1500.0, 900.0
    ratios = np.array([1.0, 2.0, 7.0, 16.0, 40.0])
    gauss = barrier_curve(
        COEFFS, theta_tokens=theta, slot_load_std_tokens=sigma, batch=B, ratio=ratios
    )
    stats = {"theta_tokens": theta, "slot_load_std_tokens": sigma, "batch": B, "ratio": ratios}
    assert gauss.barrier_model == "gaussian"
    np.testing.assert_allclose(gauss.step_time_s, expected_step_time_s(COEFFS, **stats), rtol=1e-9)
    np.testing.assert_allclose(gauss.attention_idle, attention_idle_fraction(COEFFS, **stats))
    np.testing.assert_allclose(gauss.ffn_idle, ffn_idle_fraction(COEFFS, **stats))

    rng = np.random.default_rng(3)
    loads = rng.gamma(2.0, B * theta / 2.0, size=4_000)
    emp = barrier_curve(
        COEFFS, theta_tokens=theta, slot_load_std_tokens=sigma, batch=B, ratio=ratios,
        worker_loads_tokens=loads,
    )  # fmt: skip
    assert emp.barrier_model == "empirical"
    np.testing.assert_allclose(
        emp.step_time_s, expected_step_time_empirical_s(COEFFS, loads, batch=B, ratio=ratios)
    )
    np.testing.assert_allclose(
        emp.throughput_per_instance, ratios * B / ((ratios + 1) * emp.step_time_s), rtol=1e-12
    )
    for i, r in enumerate(ratios.astype(int)):
        worst = rng.choice(loads, size=(100_000, r)).max(axis=1)
        tau = np.maximum(
            np.maximum(COEFFS.comm_time_s(B, r), COEFFS.ffn_time_s(r * B)),
            COEFFS.attention_time_s(worst),
        )
        assert abs(emp.step_time_s[i] - tau.mean()) < 4 * tau.std() / np.sqrt(tau.size) + 1e-15
