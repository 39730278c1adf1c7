"""Closed-form θ and σ² of parametric workloads against enumeration and sample estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import REL_TOL_CLOSED_FORM

from afdsizer.errors import InputError
from afdsizer.workload import (
    DiscreteDistribution,
    FixedLengths,
    GeometricDecode,
    IndependentMarginals,
    estimate_slot_load,
)


def _enumerate(
    prompt: list[tuple[int, float]], decode: list[tuple[int, float]]
) -> tuple[float, float]:
    """θ and σ² of independent P, D by summing over the joint support and every decode step."""
    steps = load = load2 = 0.0
    for p, wp in prompt:
        for d, wd in decode:
            w = wp * wd
            steps += w * d
            load += w * sum(p + k for k in range(d))
            load2 += w * sum((p + k) ** 2 for k in range(d))
    theta = load / steps
    return theta, load2 / steps - theta**2


def _dist(draw_pairs: list[tuple[int, int]]) -> DiscreteDistribution:
    values = sorted({v for v, _ in draw_pairs})
    weights = {v: 0 for v in values}
    for v, w in draw_pairs:
        weights[v] += w
    total = sum(weights.values())
    return DiscreteDistribution(
        values_tokens=tuple(values), probabilities=tuple(weights[v] / total for v in values)
    )


SUPPORT = st.lists(st.tuples(st.integers(0, 3_000), st.integers(1, 9)), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(SUPPORT, st.lists(st.tuples(st.integers(1, 60), st.integers(1, 9)), min_size=1, max_size=5))
def test_independent_marginals_closed_form_equals_enumeration(
    prompt_pairs: list[tuple[int, int]], decode_pairs: list[tuple[int, int]]
) -> None:
    """The moment formula equals brute-force enumeration over the joint support."""
    prompt, decode = _dist(prompt_pairs), _dist(decode_pairs)
    family = IndependentMarginals(prompt=prompt, decode=decode)
    theta, sigma2 = _enumerate(
        list(zip(prompt.values_tokens, prompt.probabilities, strict=True)),
        list(zip(decode.values_tokens, decode.probabilities, strict=True)),
    )
    assert family.theta_tokens == pytest.approx(theta, rel=REL_TOL_CLOSED_FORM)
    assert abs(family.sigma2_tokens2 - sigma2) <= 1e-7 * (theta**2 + 1)


@pytest.mark.parametrize(("p", "d"), [(0, 1), (100, 1), (100, 3), (2_000, 500)])
def test_fixed_lengths_closed_form(p: int, d: int) -> None:
    """Fixed (P, D): θ = P + (D−1)/2 and σ² = (D²−1)/12, as enumeration and the estimator say."""
    family = FixedLengths(prompt_tokens=p, decode_tokens=d)
    theta, sigma2 = _enumerate([(p, 1.0)], [(d, 1.0)])
    assert family.theta_tokens == pytest.approx(theta, rel=REL_TOL_CLOSED_FORM)
    assert family.sigma2_tokens2 == pytest.approx(sigma2, rel=1e-9, abs=1e-9)
    est = estimate_slot_load(*family.sample(5, np.random.default_rng(0)))
    assert est.theta_tokens == pytest.approx(family.theta_tokens, rel=REL_TOL_CLOSED_FORM)
    assert est.sigma2_tokens2 == pytest.approx(family.sigma2_tokens2, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("mean_decode", [1.0, 2.5, 40.0, 300.0])
def test_geometric_closed_form_equals_truncated_series(mean_decode: float) -> None:
    """Geometric D: the closed form equals the pmf summed until its tail is negligible."""
    prompt = DiscreteDistribution(values_tokens=(10, 500, 2_000), probabilities=(0.2, 0.5, 0.3))
    family = GeometricDecode(prompt=prompt, mean_decode_tokens=mean_decode)
    q = 1.0 - 1.0 / mean_decode
    d_max = 60 if q == 0 else int(60 * mean_decode)
    d = np.arange(1, d_max + 1, dtype=np.float64)
    pmf = (1 - q) * q ** (d - 1)
    m1, m2, m3 = (pmf * d).sum(), (pmf * d**2).sum(), (pmf * d**3).sum()
    mp1, mp2 = prompt.moment(1), prompt.moment(2)
    theta = mp1 + (m2 - m1) / (2 * m1)
    second = (mp2 * m1 + mp1 * (m2 - m1) + (2 * m3 - 3 * m2 + m1) / 6) / m1
    assert family.theta_tokens == pytest.approx(theta, rel=1e-9)
    assert family.theta_tokens == pytest.approx(mp1 + mean_decode - 1, rel=1e-12)
    assert family.sigma2_tokens2 == pytest.approx(second - theta**2, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(
    "family",
    [
        GeometricDecode(
            prompt=DiscreteDistribution(values_tokens=(50, 1_500), probabilities=(0.6, 0.4)),
            mean_decode_tokens=120.0,
        ),
        IndependentMarginals(
            prompt=DiscreteDistribution(values_tokens=(0, 4_000), probabilities=(0.9, 0.1)),
            decode=DiscreteDistribution(values_tokens=(1, 900), probabilities=(0.95, 0.05)),
        ),
    ],
    ids=["geometric", "independent-heavy-tail"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_forms_equal_sample_estimates(
    family: GeometricDecode | IndependentMarginals, seed: int
) -> None:
    """The sample estimator on 200k draws lands within 4 standard errors of the closed form."""
    P, D = family.sample(200_000, np.random.default_rng(seed))
    est = estimate_slot_load(P, D)
    assert abs(est.theta_tokens - family.theta_tokens) <= 4 * est.theta_se_tokens
    assert est.slot_load_std_tokens == pytest.approx(family.slot_load_std_tokens, rel=0.03)


def test_sampling_is_seeded() -> None:
    """The same Generator seed gives the same draws."""
    family = GeometricDecode(prompt=DiscreteDistribution.point(7), mean_decode_tokens=9.0)
    a = family.sample(100, np.random.default_rng(4))
    b = family.sample(100, np.random.default_rng(4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[1].min() >= 1


def test_empirical_distribution_moments() -> None:
    """DiscreteDistribution.empirical reproduces the sample's raw moments."""
    samples = np.array([1, 1, 2, 5, 5, 5, 9])
    dist = DiscreteDistribution.empirical(samples)
    for k in (1, 2, 3):
        assert dist.moment(k) == pytest.approx(float(np.mean(samples.astype(float) ** k)))
    assert math.isclose(sum(dist.probabilities), 1.0)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: FixedLengths(prompt_tokens=1, decode_tokens=0), "decode_tokens >= 1"),
        (lambda: FixedLengths(prompt_tokens=-1, decode_tokens=1), "prompt_tokens >= 0"),
        (
            lambda: GeometricDecode(prompt=DiscreteDistribution.point(1), mean_decode_tokens=0.5),
            "mean_decode_tokens must be finite and >= 1",
        ),
        (
            lambda: DiscreteDistribution(values_tokens=(1, 2), probabilities=(0.5, 0.6)),
            "sum to 1",
        ),
        (lambda: DiscreteDistribution(values_tokens=(1, 1), probabilities=(0.5, 0.5)), "distinct"),
        (
            lambda: IndependentMarginals(
                prompt=DiscreteDistribution.point(1), decode=DiscreteDistribution.point(0)
            ),
            "decode lengths must be >= 1",
        ),
    ],
)
def test_invalid_parameters_are_rejected(build: object, match: str) -> None:
    """Families validate their parameters and name the rule."""
    with pytest.raises(InputError, match=match):
        build()  # type: ignore[operator]
