"""The Workload value: its constructors against the trace estimator and the sampler."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.errors import InputError
from afdsizer.workload import Trace, Workload, estimate_slot_load, sample_worker_loads


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200_000), st.integers(1, 20_000), st.integers(1, 50))
def test_fixed_lengths_equal_the_trace_estimator_on_a_constant_trace(isl, osl, n) -> None:
    """--isl/--osl's closed-form θ and σ are the estimator's on n identical requests."""
    fixed = Workload.from_fixed_lengths(isl, osl)
    est = estimate_slot_load(np.full(n, isl), np.full(n, osl))
    assert fixed.theta_tokens == pytest.approx(est.theta_tokens, rel=1e-12)
    assert fixed.slot_load_std_tokens == pytest.approx(est.slot_load_std_tokens, rel=1e-9, abs=1e-9)


def test_fixed_lengths_load_law_is_the_constant_traces() -> None:
    fixed = Workload.from_fixed_lengths(100, 11)
    same = sample_worker_loads([100], [11], batch=7, n_samples=500, seed=3)
    np.testing.assert_array_equal(fixed.worker_loads(7, seed=3, n_samples=500), same)


def test_from_trace_keeps_the_trace_and_its_estimate() -> None:
    trace = Trace(prompt_tokens=np.array([10, 500, 20]), decode_tokens=np.array([3, 40, 1]))
    w = Workload.from_trace(trace)
    est = estimate_slot_load(trace.prompt_tokens, trace.decode_tokens)
    assert (w.theta_tokens, w.slot_load_std_tokens) == (
        est.theta_tokens,
        est.slot_load_std_tokens,
    )
    assert w.has_load_law and w.trace is trace


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: Workload.from_moments(0.0, 1.0), "theta_tokens"),
        (lambda: Workload.from_moments(10.0, -1.0), "slot_load_std_tokens"),
        (lambda: Workload.from_moments(float("nan"), 1.0), "theta_tokens"),
        (lambda: Workload.from_fixed_lengths(-1, 10), "isl must be an integer >= 0"),
        (lambda: Workload.from_fixed_lengths(10, 0), "osl must be an integer >= 1"),
        (lambda: Workload.from_moments(10.0, 1.0).worker_loads(4), "worker-load law is unknown"),
    ],
)
def test_bad_workloads_are_refused_in_one_line(call, fragment) -> None:
    with pytest.raises(InputError, match=fragment) as info:
        call()
    assert "\n" not in str(info.value)
