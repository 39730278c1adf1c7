"""The closed-form screen against the exact flow shop and a scalar brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.plan import pipeline_step_s


def _flow_shop_s(a: float, c: float, f: float, m: int, layers: int) -> float:
    """The simulator's microbatch step (sim/_kernel.py), written out for identical microbatches."""
    free_a = free_c = free_f = 0.0
    done = [0.0] * m
    for _ in range(layers):
        for j in range(m):
            free_a = max(free_a, done[j]) + a / layers
            free_c = max(free_c, free_a) + c / layers
            free_f = max(free_f, free_c) + f / layers
            done[j] = free_f
    return free_f


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(1e-4, 1e-1),
    c=st.floats(0.0, 1e-1),
    f=st.floats(1e-4, 1e-1),
    m=st.integers(1, 3),
    layers=st.integers(1, 96),
)
def test_closed_form_pipeline_matches_the_flow_shop(
    a: float, c: float, f: float, m: int, layers: int
) -> None:
    """Fill plus L − 1 cycles of max(m·max, a+c+f) is the flow shop's makespan within 1/L."""
    exact = _flow_shop_s(a, c, f, m, layers)
    closed = float(pipeline_step_s(np.array(a), np.array(c), np.array(f), m, layers, False))
    # Exact for m = 1 (serial) and when one stage dominates; otherwise the first cycle's
    # transient differs from steady state by at most one layer's stage times.
    assert closed == pytest.approx(exact, rel=1e-9, abs=(a + c + f) / layers + 1e-12)
    if m == 1:
        assert closed == pytest.approx(a + c + f, rel=1e-12)


def test_overlapped_pipeline_is_the_paper_max() -> None:
    """Overlapped: max(m·a, m·c, m·f), the paper's τ for m = 1."""
    tau = pipeline_step_s(np.array([3.0]), np.array([1.0]), np.array([2.0]), 1, 61, True)
    assert tau[0] == 3.0


def test_long_pipelines_approach_the_bottleneck() -> None:
    """Many layers and a dominant stage: τ → m·max(a, c, f) (docs/design.md §9)."""
    tau = float(pipeline_step_s(np.array(1.0), np.array(0.1), np.array(0.5), 3, 10_000, False))
    assert tau == pytest.approx(3.0, rel=1e-3)
    assert math.isclose(_flow_shop_s(1.0, 0.1, 0.5, 3, 2000), tau, rel_tol=2e-3)
