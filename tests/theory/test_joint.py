"""Joint (B, r) sizing: KV bound, TPOT bound, prices — against brute force."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.theory import (
    DEFAULT_BATCH_SLOTS,
    best_integer_ratio,
    expected_step_time_s,
    joint_sizing,
    max_batch_for_kv,
)

BASE = CostCoefficients(
    alpha_attn_s=1e-3,
    beta_attn_s_per_token=1e-8,
    alpha_comm_s=1e-4,
    beta_comm_s_per_token=1e-7,
    alpha_ffn_s=5e-4,
    beta_ffn_s_per_token=1e-6,
)


def _fits_brute(theta: float, sigma: float, cap: float, q: float, batch: int) -> bool:
    """The q quantile of Normal(B·θ, B·σ²) (scipy's ppf) is within the capacity."""
    if sigma == 0:
        return batch * theta <= cap
    return bool(stats.norm.ppf(q, loc=batch * theta, scale=math.sqrt(batch) * sigma) <= cap)


@settings(max_examples=60, deadline=None)
@given(
    theta=st.floats(50.0, 5000.0),
    cv=st.floats(0.0, 3.0),
    cap=st.floats(1e3, 1e6),
    q=st.sampled_from([0.5, 0.9, 0.99, 0.999, 0.9999]),
)
def test_kv_bound_is_largest_fitting_batch(theta: float, cv: float, cap: float, q: float) -> None:
    """max_batch_for_kv is the largest B whose q-quantile load fits (brute force over B)."""
    c = dataclasses.replace(BASE, kv_capacity_tokens=cap)
    sigma = cv * theta
    b_max = max_batch_for_kv(c, theta_tokens=theta, slot_load_std_tokens=sigma, kv_quantile=q)
    assert b_max is not None
    batches = np.arange(1, int(cap / theta) + 3)
    if sigma == 0:
        quantile_load = batches * theta
    else:
        quantile_load = stats.norm.ppf(q, loc=batches * theta, scale=np.sqrt(batches) * sigma)
    fitting = batches[quantile_load <= cap]
    brute = int(fitting.max()) if fitting.size else 0
    # Exactly at the boundary the two quantile routines may round differently.
    if b_max != brute:
        b = max(b_max, brute)
        load = b * theta + stats.norm.ppf(q) * math.sqrt(b) * sigma
        assert load == pytest.approx(cap, rel=1e-12)


def _brute_joint(
    c: CostCoefficients,
    theta: float,
    sigma: float,
    batches: range,
    r_max: int,
    tpot_s: float | None,
    prices: tuple[float, float],
) -> tuple[int, int, float]:
    """Best (B, r, J) over every B in ``batches`` and r in 1..r_max, by enumeration."""
    best = (0, 0, -math.inf)
    r = np.arange(1, r_max + 1, dtype=float)
    for b in batches:
        tau = expected_step_time_s(
            c, theta_tokens=theta, slot_load_std_tokens=sigma, batch=b, ratio=r
        )
        value = r * b / ((prices[0] * r + prices[1]) * tau)
        if tpot_s is not None:
            value = np.where(tau <= tpot_s, value, -math.inf)
        i = int(np.argmax(value))
        if value[i] > best[2]:
            best = (b, i + 1, float(value[i]))
    return best


@settings(max_examples=10, deadline=None)
@given(
    cap=st.floats(2e4, 6e4),
    cv=st.floats(0.0, 2.0),
    tpot_factor=st.one_of(st.none(), st.floats(1.0, 3.0)),
    prices=st.one_of(st.none(), st.tuples(st.floats(0.5, 4.0), st.floats(0.5, 8.0))),
)
# A subnormal σ once overflowed z = (G − μ)/σ in the barrier integral.
@example(cap=20000.0, cv=2.2250738585072014e-308, tpot_factor=None, prices=None)
def test_joint_sizing_is_brute_force_best(
    cap: float, cv: float, tpot_factor: float | None, prices: tuple[float, float] | None
) -> None:
    """joint_sizing returns the feasible (B, r) with the best objective (enumeration of all
    B <= the KV bound and r up to 800), with and without a TPOT target and prices."""
    theta = 1000.0
    sigma = cv * theta
    c = dataclasses.replace(BASE, kv_capacity_tokens=cap)
    # A target between the fastest possible step and a few times it.
    tpot = None if tpot_factor is None else tpot_factor * 2.5e-3
    weights = prices if prices is not None else (1.0, 1.0)
    kw = {}
    if prices is not None:
        kw = {"price_attn_per_h": prices[0], "price_ffn_per_h": prices[1]}
    try:
        choice = joint_sizing(
            c, theta_tokens=theta, slot_load_std_tokens=sigma, tpot_target_s=tpot, **kw
        )
    except InputError as exc:
        assert "cannot be met" in str(exc)
        b1 = expected_step_time_s(
            c, theta_tokens=theta, slot_load_std_tokens=sigma, batch=1, ratio=1
        )
        assert tpot is not None and b1 > tpot
        return
    b_kv = max_batch_for_kv(c, theta_tokens=theta, slot_load_std_tokens=sigma)
    assert b_kv is not None and choice.batch <= b_kv
    b_best, r_best, value = _brute_joint(c, theta, sigma, range(1, b_kv + 1), 800, tpot, weights)
    assert choice.objective == pytest.approx(value, rel=1e-12)
    if (choice.batch, choice.ratio) != (b_best, r_best):  # only an exact tie may differ
        assert choice.objective == pytest.approx(value, rel=1e-12)
    if tpot is not None:
        tau = expected_step_time_s(
            c,
            theta_tokens=theta,
            slot_load_std_tokens=sigma,
            batch=choice.batch,
            ratio=choice.ratio,
        )
        assert tau <= tpot


def test_zooming_batch_search_beats_every_sampled_batch() -> None:
    """With thousands of feasible B the zooming grid still beats every sampled B's best r."""
    c = dataclasses.replace(BASE, kv_capacity_tokens=3e6)
    theta, sigma = 1000.0, 800.0
    choice = joint_sizing(c, theta_tokens=theta, slot_load_std_tokens=sigma, tpot_target_s=0.02)
    assert choice.tpot_max_batch is not None and choice.tpot_max_batch > 600
    for b in range(5, choice.tpot_max_batch + 1, 61):
        r_cap_values = np.arange(1, 2000, dtype=float)
        tau = expected_step_time_s(
            c, theta_tokens=theta, slot_load_std_tokens=sigma, batch=b, ratio=r_cap_values
        )
        lam = np.where(tau <= 0.02, r_cap_values * b / ((r_cap_values + 1) * tau), 0.0)
        assert choice.objective >= lam.max() * (1 - 1e-12)


def test_no_bound_uses_default_batch() -> None:
    """Without KV capacity, TPOT target or batch, B is the documented default."""
    choice = joint_sizing(BASE, theta_tokens=1000.0, slot_load_std_tokens=500.0)
    assert (choice.batch, choice.batch_limit) == (DEFAULT_BATCH_SLOTS, "default")
    assert choice.ratio == best_integer_ratio(
        BASE, theta_tokens=1000.0, slot_load_std_tokens=500.0, batch=DEFAULT_BATCH_SLOTS
    )


def test_cheap_attention_raises_ratio_per_dollar() -> None:
    """Pricing FFN instances at 8× Attention instances makes more Attention per FFN pay off."""
    kw = {"theta_tokens": 1000.0, "slot_load_std_tokens": 500.0, "batch": 16}
    per_instance = best_integer_ratio(BASE, **kw)
    per_dollar = best_integer_ratio(BASE, price_attn_per_h=1.0, price_ffn_per_h=8.0, **kw)
    assert per_dollar > per_instance


def test_batch_that_does_not_fit_names_largest_that_fits() -> None:
    """A given B beyond the KV capacity raises one line with the largest B that fits."""
    c = dataclasses.replace(BASE, kv_capacity_tokens=50_000.0)
    theta, sigma = 1000.0, 700.0
    largest = max(b for b in range(1, 60) if _fits_brute(theta, sigma, 50_000.0, 0.999, b))
    with pytest.raises(
        InputError, match=f"batch 60 does not fit .* largest batch that fits is {largest}$"
    ):
        joint_sizing(c, theta_tokens=theta, slot_load_std_tokens=sigma, batch=60)
    choice = joint_sizing(c, theta_tokens=theta, slot_load_std_tokens=sigma, batch=largest)
    assert (choice.batch, choice.batch_limit) == (largest, "given")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kv_quantile": 1.0}, r"kv_quantile must lie in \[0.5, 1\), got 1.0"),
        ({"tpot_target_s": 0.0}, "tpot_target_s must be a finite time > 0 s, got 0.0"),
        ({"tpot_target_s": 1e-4}, "cannot be met: even B = 1, r = 1"),
        (
            {"batch": 30, "tpot_target_s": 1.2e-3},
            "batch 30 cannot meet .* largest batch that meets it is 19",
        ),
        ({"batch": 0}, "integer >= 1, got 0"),
        ({"slot_load_std_tokens": -3.0}, "slot_load_std_tokens"),
    ],
)
def test_errors(kwargs: dict[str, float], fragment: str) -> None:
    """Bad limits give one InputError line naming the parameter and the value."""
    args = {"theta_tokens": 1000.0, "slot_load_std_tokens": 100.0, **kwargs}
    with pytest.raises(InputError, match=fragment):
        joint_sizing(BASE, **args)  # type: ignore[arg-type]


def test_no_batch_fits_memory() -> None:
    """When even one slot's quantile load exceeds the capacity the error says so."""
    c = dataclasses.replace(BASE, kv_capacity_tokens=500.0)
    with pytest.raises(InputError, match="no batch fits in kv_capacity_tokens=500: even B = 1"):
        joint_sizing(c, theta_tokens=1000.0, slot_load_std_tokens=100.0)
