"""Tests of the knee (hinge) fit on idle-fraction curves."""

from __future__ import annotations

import numpy as np
import pytest

from afdsizer.errors import InputError
from afdsizer.validate import find_knee


def test_hand_built_hinge_off_grid() -> None:
    """A hinge with its knee between grid points is recovered to the scan resolution."""
    r = np.arange(1, 21, dtype=float)
    f = np.where(r < 7.3, 0.04 + 0.06 * (7.3 - r), 0.04)
    knee = find_knee(r, f)
    assert knee.ratio == pytest.approx(7.3, abs=0.01)
    assert knee.floor == pytest.approx(0.04, abs=1e-3)
    assert knee.slope_per_ratio == pytest.approx(-0.06, rel=1e-2)
    assert not knee.at_edge


def test_mean_field_ffn_idle_curve_gives_r_attention() -> None:
    """Mean-field FFN idle 1 − t_F(r)/max(t_A, t_F(r)) has its knee at r_A = (t_A − α_F)/(β_F·B)."""
    alpha_f, beta_f, batch, t_attn = 5e-3, 2e-5, 64, 30e-3
    r_attention = (t_attn - alpha_f) / (beta_f * batch)  # 19.53
    r = np.unique(np.rint(np.geomspace(1, 60, 18)))
    t_ffn = alpha_f + beta_f * r * batch
    knee = find_knee(r, 1 - t_ffn / np.maximum(t_attn, t_ffn))
    assert knee.ratio == pytest.approx(r_attention, rel=0.01)


def test_noisy_hinge_seeds() -> None:
    """Seeded noise of 0.5% on a hinge moves the knee by well under one ratio step."""
    for s in range(20):
        rng = np.random.default_rng(s)
        r = np.arange(1, 41, dtype=float)
        f = np.maximum(0.6 - 0.03 * r, 0.05) + rng.normal(0, 0.005, r.size)
        assert find_knee(r, f).ratio == pytest.approx(55 / 3, abs=0.5)


def test_flat_curve_has_no_knee() -> None:
    """An idle curve that does not fall has no knee."""
    knee = find_knee([1, 2, 3, 4], [0.01, 0.012, 0.011, 0.01])
    assert knee.ratio is None


def test_knee_beyond_range_is_at_edge() -> None:
    """A curve still falling at the last ratio reports the knee at the edge."""
    r = np.arange(1, 11, dtype=float)
    knee = find_knee(r, 0.9 - 0.05 * r)
    assert knee.at_edge


def test_knee_rejects_short_input() -> None:
    """Fewer than three points cannot place a hinge."""
    with pytest.raises(InputError, match="length >= 3"):
        find_knee([1, 2], [0.5, 0.1])
