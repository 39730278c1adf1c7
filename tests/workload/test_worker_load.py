"""Stationary worker-load sampling: moments against the renewal–reward θ and σ², and its inputs."""

from __future__ import annotations

import numpy as np
import pytest

from afdsizer.errors import InputError
from afdsizer.workload import estimate_slot_load, sample_worker_loads


def test_fixed_lengths_slot_load_is_uniform() -> None:
    """With fixed P and D a slot's stationary load is uniform on P … P+D−1 (mean P + (D−1)/2)."""
    P, D, B = 100, 11, 3
    loads = sample_worker_loads(np.full(5, P), np.full(5, D), batch=B, n_samples=40_000, seed=1)
    var_slot = (D * D - 1) / 12  # discrete uniform on D values
    assert loads.mean() == pytest.approx(B * (P + (D - 1) / 2), rel=1e-3)
    assert loads.var() == pytest.approx(B * var_slot, rel=0.05)
    assert loads.min() >= B * P and loads.max() <= B * (P + D - 1)


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_moments_are_b_theta_and_b_sigma2(seed: int) -> None:
    """Mean is B·θ and variance B·σ², with θ, σ from the renewal–reward estimator."""
    rng = np.random.default_rng(seed)
    P = rng.integers(0, 3000, size=300)
    D = rng.integers(1, 400, size=300)
    est = estimate_slot_load(P, D)
    B, n = 8, 60_000
    loads = sample_worker_loads(P, D, batch=B, n_samples=n, seed=seed)
    theta, sigma = float(est.theta_tokens), float(est.slot_load_std_tokens)
    # Five standard errors of the sample mean and (roughly, for a sum of 8) of the variance.
    assert loads.mean() == pytest.approx(B * theta, abs=5 * np.sqrt(B / n) * sigma)
    assert loads.var() == pytest.approx(B * sigma**2, rel=5 * np.sqrt(2 / n) * 3)


def test_length_biased_choice() -> None:
    """A request is chosen with probability ∝ D: the long one dominates the slot load."""
    P = np.array([10, 1000])
    D = np.array([1, 99])
    theta = float(np.mean(P * D + D * (D - 1) / 2) / np.mean(D))
    loads = sample_worker_loads(P, D, batch=4, n_samples=50_000, seed=3)
    assert loads.mean() == pytest.approx(4 * theta, rel=5e-3)


def test_seeded() -> None:
    """The same seed gives the same draws; another seed gives others."""
    P, D = [5, 50, 500], [3, 30, 300]
    a = sample_worker_loads(P, D, batch=4, n_samples=100, seed=5)
    b = sample_worker_loads(P, D, batch=4, n_samples=100, seed=5)
    c = sample_worker_loads(P, D, batch=4, n_samples=100, seed=6)
    assert a.dtype == np.float64 and a.shape == (100,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("P", "D", "batch", "n", "fragment"),
    [
        ([1, 2], [1, 0], 2, 10, "D >= 1"),
        ([-1, 2], [1, 1], 2, 10, "prompt_tokens must be >= 0"),
        ([1, 2], [1], 2, 10, "equal length"),
        ([1], [1], 0, 10, "batch (B, slots per worker) must be >= 1, got 0"),
        ([1], [1], 2, 0, "n_samples must be >= 1, got 0"),
    ],
)
def test_rejects_bad_input(P: list[int], D: list[int], batch: int, n: int, fragment: str) -> None:
    """Bad lengths, B or sample count raise one InputError naming the rule and value."""
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        sample_worker_loads(P, D, batch=batch, n_samples=n)
