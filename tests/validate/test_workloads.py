"""Tests of the synthetic long-context stress workload."""

from __future__ import annotations

import numpy as np
import pytest

from afdsizer.errors import InputError
from afdsizer.validate import synthetic_long_context
from afdsizer.workload import estimate_slot_load


def test_stress_workload_is_long_context_and_seeded() -> None:
    """Median P near 8,000, mean D near 300, θ far above the Azure traces; same seed, same draws."""
    P, D = synthetic_long_context(20_000, seed=7)
    assert np.median(P) == pytest.approx(8_000, rel=0.05)
    assert D.mean() == pytest.approx(300, rel=0.05)
    assert P.max() <= 128_000 and D.max() <= 4_000 and P.min() >= 1 and D.min() >= 1
    assert estimate_slot_load(P, D).theta_tokens > 10_000
    P2, D2 = synthetic_long_context(20_000, seed=7)
    assert np.array_equal(P, P2) and np.array_equal(D, D2)


def test_stress_workload_rejects_empty() -> None:
    """Zero requests is an error."""
    with pytest.raises(InputError, match="n_requests must be >= 1"):
        synthetic_long_context(0)
