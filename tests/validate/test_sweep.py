"""Tests of the ratio-sweep driver (common random numbers, paired CIs, bracket search)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.errors import InputError
from afdsizer.validate import RatioPoint, paired_relative_loss, search_best_ratio, sweep_ratios


def _ffn_bound_lambda(r: int, alpha_f: float, beta_f: float, batch: int) -> float:
    """Closed form Λ(r) = r·B/((r+1)(α_F + β_F·r·B)) once the FFN binds (docs/design.md §4)."""
    return r * batch / ((r + 1) * (alpha_f + beta_f * r * batch))


def _noisy_evaluator(alpha_f: float, beta_f: float, batch: int, noise: float, calls: list[int]):
    """Λ(r) times a per-seed factor shared by every r (CRN) and a small per-(r, seed) factor."""

    def evaluate(ratio: int, seed: int) -> RatioPoint:
        calls.append(ratio)
        shared = np.random.default_rng(seed).lognormal(0.0, 0.05, size=8)
        own = np.random.default_rng([seed, ratio]).normal(1.0, noise, size=8)
        lam = _ffn_bound_lambda(ratio, alpha_f, beta_f, batch)
        return RatioPoint(
            throughput_per_instance=lam * shared * own, attention_idle=0.1, ffn_idle=0.0
        )

    return evaluate


@settings(max_examples=30, deadline=None)
@given(
    alpha_f=st.floats(1e-3, 5e-2),
    beta_f=st.floats(1e-7, 1e-5),
    batch=st.integers(1, 256),
)
def test_search_finds_closed_form_optimum(alpha_f: float, beta_f: float, batch: int) -> None:
    """With only CRN (shared) noise, the search returns the brute-force integer arg-max."""
    r_peak = math.sqrt(alpha_f / (beta_f * batch))
    if r_peak > 400:
        return
    truth = max(range(1, 2000), key=lambda r: _ffn_bound_lambda(r, alpha_f, beta_f, batch))
    calls: list[int] = []
    sweep = search_best_ratio(
        _noisy_evaluator(alpha_f, beta_f, batch, 0.0, calls), r_max=8, seeds=[0, 1]
    )
    # Equal to the arg-max up to float rounding (exact ties at a half-integer r_peak).
    lam = [_ffn_bound_lambda(r, alpha_f, beta_f, batch) for r in (sweep.best_ratio, truth)]
    assert lam[0] >= lam[1] * (1 - 1e-12)
    assert abs(sweep.best_ratio - truth) <= 1
    # Neighbours of the best were run, so the maximum is verified locally.
    assert {sweep.best_ratio + 1} <= set(sweep.ratios.tolist())
    # Far fewer runs than a full scan of 1 … 2·r_peak.
    assert len(set(calls)) < max(30, 2 * r_peak)


def test_shared_noise_cancels_in_paired_loss() -> None:
    """Large per-seed noise shared across r (CRN) does not widen the paired loss interval."""
    alpha_f, beta_f, batch = 1e-2, 1e-6, 64
    sweep = sweep_ratios(
        _noisy_evaluator(alpha_f, beta_f, batch, 1e-6, []), range(5, 20), seeds=[0, 1, 2]
    )
    best = sweep.best_ratio
    assert best == max(range(5, 20), key=lambda r: _ffn_bound_lambda(r, alpha_f, beta_f, batch))
    r = best + 3
    exact = 1 - _ffn_bound_lambda(r, alpha_f, beta_f, batch) / _ffn_bound_lambda(
        best, alpha_f, beta_f, batch
    )
    loss, lo, hi = sweep.loss(r)
    assert loss == pytest.approx(exact, rel=1e-4)
    assert hi - lo < 1e-4 < exact
    # The unpaired CI of Λ itself is wide (5% per-seed noise), the paired one is not.
    i = sweep.index(best)
    assert sweep.throughput_ci[i, 1] - sweep.throughput_ci[i, 0] > 100 * (hi - lo)
    assert best in sweep.tied_ratios and r not in sweep.tied_ratios


def test_paired_loss_ci_coverage() -> None:
    """The 95% paired CI of the loss covers the true loss in about 95% of seeded repetitions."""
    true_loss, covered, n_rep = 0.01, 0, 400
    for s in range(n_rep):
        rng = np.random.default_rng(s)
        best = 100.0 * rng.lognormal(0.0, 0.1, size=12)  # shared (CRN) noise
        cand = best * (1 - true_loss) * rng.normal(1.0, 0.01, size=12)  # own noise
        _, lo, hi = paired_relative_loss(cand, best)
        covered += lo <= true_loss <= hi
    assert 0.92 <= covered / n_rep <= 0.98


def test_equal_ratios_are_tied() -> None:
    """Ratios whose replicates coincide (a flat curve under CRN) are all tied with the best."""

    def flat(ratio: int, seed: int) -> RatioPoint:
        values = np.random.default_rng(seed).lognormal(0.0, 0.1, size=5)
        return RatioPoint(throughput_per_instance=values, attention_idle=0.0, ffn_idle=0.0)

    sweep = sweep_ratios(flat, [3, 4, 5], seeds=[0, 1])
    assert set(sweep.tied_ratios) == {3, 4, 5}


def test_paired_relative_loss_hand_worked() -> None:
    """Ratio estimator and Student-t interval on a hand-worked example."""
    loss, lo, hi = paired_relative_loss(np.array([9.0, 9.5, 10.0]), np.array([10.0, 10.0, 10.0]))
    # R = 28.5/30 = 0.95; z = x − R·y = (−0.5, 0, 0.5), sd 0.5; se = 0.5/(√3·10);
    # t_{0.975, 2} = 4.302653 → half-width 0.124212.
    assert loss == pytest.approx(0.05, abs=1e-12)
    assert hi - loss == pytest.approx(4.302653 * 0.5 / (math.sqrt(3) * 10), rel=1e-6)
    assert loss - lo == pytest.approx(hi - loss, rel=1e-12)


def test_paired_relative_loss_single_replicate_has_unbounded_ci() -> None:
    """One replicate gives a point estimate and an unknown (infinite) interval."""
    loss, lo, hi = paired_relative_loss(np.array([8.0]), np.array([10.0]))
    assert loss == pytest.approx(0.2)
    assert lo == -math.inf and hi == math.inf


def test_search_extends_range_when_best_at_edge() -> None:
    """A curve still rising at r_max makes the search look further."""
    sweep = search_best_ratio(_noisy_evaluator(1.0, 1e-6, 1, 1e-9, []), r_max=4, seeds=[0])
    truth = max(range(1, 2000), key=lambda r: _ffn_bound_lambda(r, 1.0, 1e-6, 1))
    assert sweep.best_ratio == min(truth, 1024)


@pytest.mark.parametrize(
    ("ratios", "seeds", "match"),
    [([], [0], "ratios must be"), ([0, 1], [0], "ratios must be"), ([1], [0, 0], "distinct")],
)
def test_sweep_rejects_bad_input(ratios: list[int], seeds: list[int], match: str) -> None:
    """Empty or zero ratios and repeated seeds are refused with a clear message."""
    with pytest.raises(InputError, match=match):
        sweep_ratios(_noisy_evaluator(1e-2, 1e-6, 8, 0.0, []), ratios, seeds)


def test_ratio_point_rejects_non_positive_throughput() -> None:
    """A run reporting zero throughput is an error, not a data point."""
    with pytest.raises(InputError, match="throughput_per_instance must hold"):
        RatioPoint(throughput_per_instance=np.array([0.0]), attention_idle=0.0, ffn_idle=0.0)


def test_search_caps_wild_range() -> None:
    """A huge r_max is capped, so a wild prediction cannot make the sweep explode."""
    calls: list[int] = []
    search_best_ratio(_noisy_evaluator(1e-2, 1e-6, 64, 0.0, calls), r_max=10**6, seeds=[0])
    assert max(calls) <= 1024
