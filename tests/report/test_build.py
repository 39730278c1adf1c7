"""build_report_data: the values a report shows, checked against closed forms and brute force."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.report import (
    DEFAULT_SIM_STEPS,
    REGIMES,
    ReportData,
    auto_sim_steps,
    build_report_data,
    sim_ratios_around,
    theta_windows,
)
from afdsizer.report._build import (
    MIN_AUTO_SIM_STEPS,
    MIN_WINDOW_REQUESTS,
    SIM_SLOT_STEP_BUDGET,
)
from afdsizer.theory import recommend
from afdsizer.workload import Trace, Workload, sample_worker_loads

from ._report_oracles import mean_field_curves

SMALL_SIM_STEPS = 3000
BATCH = 32


def _theta_direct(prompt: np.ndarray, decode: np.ndarray) -> float:
    """θ = E[P·D + D(D−1)/2] / E[D] written out (docs/design.md §3)."""
    p, d = prompt.astype(np.float64), decode.astype(np.float64)
    return float((p * d + d * (d - 1) / 2).sum() / d.sum())


def _synthetic_trace(n: int, *, seed: int, timestamps: bool) -> Trace:
    rng = np.random.default_rng(seed)
    prompt = rng.integers(50, 3000, size=n)
    decode = rng.geometric(1 / 150, size=n)
    arrival = np.sort(rng.uniform(0, 3600, size=n)) if timestamps else None
    if arrival is not None:
        arrival -= arrival[0]
    return Trace(prompt_tokens=prompt, decode_tokens=decode, arrival_s=arrival, source="synthetic")


@pytest.fixture(scope="module")
def trace() -> Trace:
    return _synthetic_trace(3000, seed=7, timestamps=True)


@pytest.fixture(scope="module")
def built(coefficients: CostCoefficients, trace: Trace) -> ReportData:
    return build_report_data(
        coefficients, trace=trace, batch=BATCH, sim_steps=SMALL_SIM_STEPS, seed=5
    )


@pytest.mark.parametrize(
    ("r_int", "expected"),
    [
        (1, [1, 2]),
        (2, [1, 2, 3]),
        (10, [5, 7, 8, 10, 12, 13, 16]),
        (40, [20, 28, 34, 40, 46, 52, 64]),
    ],
)
def test_sim_ratios_around_table(r_int: int, expected: list[int]) -> None:
    """The simulated r values spread from half to 1.6 times the recommended r."""
    assert sim_ratios_around(r_int).tolist() == expected


@given(r_int=st.integers(1, 10_000))
def test_sim_ratios_around_properties(r_int: int) -> None:
    """Always sorted, unique, >= 1, and holding r_int itself."""
    picks = sim_ratios_around(r_int)
    assert picks.min() >= 1 and r_int in picks
    assert np.all(np.diff(picks) > 0)


@given(
    ratios=st.lists(st.integers(1, 5000), min_size=1, max_size=8),
    batch=st.integers(1, 20_000),
)
def test_auto_sim_steps_respects_the_budget(ratios: list[int], batch: int) -> None:
    """Automatic steps stay in [MIN, DEFAULT]; inside that range the budget holds exactly."""
    steps = auto_sim_steps(ratios, batch)
    assert MIN_AUTO_SIM_STEPS <= steps <= DEFAULT_SIM_STEPS
    work = steps * batch * sum(ratios)
    if MIN_AUTO_SIM_STEPS < steps < DEFAULT_SIM_STEPS:
        assert work <= SIM_SLOT_STEP_BUDGET < work + batch * sum(ratios)
    elif steps == DEFAULT_SIM_STEPS:
        assert work <= SIM_SLOT_STEP_BUDGET


def test_sim_ratios_around_rejects_zero() -> None:
    """r_int below 1 is refused with its value."""
    with pytest.raises(InputError, match="r_int must be >= 1, got 0"):
        sim_ratios_around(0)


def test_theta_windows_match_direct_formula(trace: Trace) -> None:
    """Each window's θ is the closed form on the requests arriving in it; counts cover all."""
    windows = theta_windows(trace, n_windows=6)
    assert windows is not None
    assert windows.n_requests.sum() == trace.n_requests
    assert trace.arrival_s is not None
    for w in range(6):
        last = w == 5
        inside = (trace.arrival_s >= windows.start_s[w]) & (
            (trace.arrival_s <= windows.end_s[w]) if last else (trace.arrival_s < windows.end_s[w])
        )
        assert windows.n_requests[w] == inside.sum()
        direct = _theta_direct(trace.prompt_tokens[inside], trace.decode_tokens[inside])
        assert windows.theta_tokens[w] == pytest.approx(direct, rel=1e-9)
        assert windows.ci_low_tokens[w] < direct < windows.ci_high_tokens[w]


def test_theta_windows_sparse_and_missing() -> None:
    """Windows with too few requests get NaN; a trace without timestamps gets no windows."""
    sparse = _synthetic_trace(MIN_WINDOW_REQUESTS * 2, seed=1, timestamps=True)
    windows = theta_windows(sparse, n_windows=8)
    assert windows is not None
    assert np.all(np.isnan(windows.theta_tokens[windows.n_requests < MIN_WINDOW_REQUESTS]))
    assert theta_windows(_synthetic_trace(100, seed=1, timestamps=False)) is None


def test_recommendation_is_theorys(built: ReportData, trace: Trace) -> None:
    """The card numbers are theory.recommend's at the trace's θ (closed form), σ and loads."""
    workload = built.workload
    assert workload is not None
    assert workload.theta_tokens == pytest.approx(
        _theta_direct(trace.prompt_tokens, trace.decode_tokens), rel=1e-9
    )
    # The 0.1 keywords size the paper's deployment (one GPU per instance, Λ per instance);
    # with a trace the barrier is empirical, worker loads drawn with size's seed 0.
    paper = Deployment(attn_gpus=1, ffn_gpus=1, objective="instance", batch=BATCH)
    rec = recommend(built.coefficients, Workload.from_trace(trace), paper)
    assert rec.barrier_model == "empirical"
    loads = sample_worker_loads(trace.prompt_tokens, trace.decode_tokens, batch=BATCH, seed=0)
    legacy = recommend(
        built.coefficients,
        theta_tokens=workload.theta_tokens,
        slot_load_std_tokens=workload.slot_load_std_tokens,
        batch=BATCH,
        worker_load_samples=loads,
    )
    assert legacy.r_int == rec.r_int
    assert legacy.throughput_per_instance == rec.throughput_per_instance
    for field in dataclasses.fields(built.recommendation):
        assert getattr(built.recommendation, field.name) == getattr(rec, field.name), field.name


def test_mean_field_curve_is_the_closed_form(built: ReportData) -> None:
    """Λ(r) mean field equals r·B/((r+1)·max(t_A, t_C, t_F)) written out by hand."""
    curves = built.curves
    theta = built.recommendation.theta
    hand = mean_field_curves(
        built.coefficients, batch=BATCH, theta_tokens=theta, ratios=curves.ratios
    )
    assert np.isin(np.arange(1, int(curves.ratios.max()) + 1), curves.ratios).all()
    np.testing.assert_allclose(curves.throughput_mean_field, hand.throughput_mean_field, rtol=1e-12)
    np.testing.assert_allclose(curves.ffn_time_s, hand.ffn_time_s, rtol=1e-12)
    np.testing.assert_allclose(curves.attention_time_s, hand.attention_time_s, rtol=1e-12)
    # The barrier only slows a step down: the slowest worker's expected time never falls as r
    # grows, and E[τ] is at least each part's time. E[τ]·Λ·(r+1) = r·B by definition.
    assert np.all(np.diff(curves.attention_time_barrier_s) >= -1e-15)
    parts = np.maximum.reduce(
        [curves.comm_time_s, curves.ffn_time_s, curves.attention_time_barrier_s]
    )
    assert np.all(curves.step_time_s >= parts * (1 - 1e-12))
    np.testing.assert_allclose(
        curves.step_time_s * curves.throughput_barrier * (curves.ratios + 1),
        curves.ratios * BATCH,
        rtol=1e-12,
    )
    assert curves.ratios.max() >= 2 * built.recommendation.r_star


@pytest.fixture(scope="module")
def built_gaussian(coefficients: CostCoefficients, trace: Trace) -> ReportData:
    return build_report_data(
        coefficients, trace=trace, batch=BATCH, sim_steps=0, seed=5, barrier_model="gaussian"
    )


def test_slowest_worker_time_matches_monte_carlo(
    built: ReportData, built_gaussian: ReportData, trace: Trace
) -> None:
    """E[max_w t_A,w] equals a seeded Monte Carlo of r worker loads within 4 SE, under the law
    each report used: the trace's sampled worker loads (empirical, size's seed-0 draw) or
    Normal(B·θ, B·σ²)."""
    workload = built.workload
    assert workload is not None
    c = built.coefficients
    samples = sample_worker_loads(trace.prompt_tokens, trace.decode_tokens, batch=BATCH, seed=0)
    rng = np.random.default_rng(11)
    for r in (2, 7, 16):
        draws = {
            "empirical": rng.choice(samples, size=(200_000, r)),
            "gaussian": rng.normal(
                BATCH * workload.theta_tokens,
                math.sqrt(BATCH) * workload.slot_load_std_tokens,
                size=(200_000, r),
            ),
        }
        for data, law in ((built, "empirical"), (built_gaussian, "gaussian")):
            curves = data.curves
            i = int(np.flatnonzero(curves.ratios == r)[0])
            slowest = c.alpha_attn_s + c.beta_attn_s_per_token * draws[law].max(axis=1)
            se = slowest.std() / math.sqrt(slowest.size)
            assert abs(curves.attention_time_barrier_s[i] - slowest.mean()) < 4 * se, (law, r)


def test_gaussian_barrier_never_beats_mean_field(built_gaussian: ReportData) -> None:
    """Under Gaussian loads centred on B·θ the barrier-aware Λ(r) stays below the mean field."""
    curves = built_gaussian.curves
    assert np.all(curves.throughput_barrier <= curves.throughput_mean_field * (1 + 1e-12))


def test_barrier_curve_peaks_at_the_recommended_integer(built: ReportData) -> None:
    """The plotted barrier-aware Λ(r), read at integers, is largest at the recommended r."""
    curves = built.curves
    integers = np.flatnonzero(curves.ratios == np.round(curves.ratios))
    best = curves.ratios[integers][np.argmax(curves.throughput_barrier[integers])]
    assert best == built.recommendation.r_int


def test_sim_points_use_common_random_numbers(
    coefficients: CostCoefficients, trace: Trace, built: ReportData
) -> None:
    """One seed for every r: simulating a subset of the ratios reproduces those points exactly."""
    sim = built.sim
    assert sim is not None
    assert sim.ratios.tolist() == sim_ratios_around(built.recommendation.r_int).tolist()
    subset = [int(sim.ratios[0]), int(sim.ratios[-1])]
    again = build_report_data(
        coefficients,
        trace=trace,
        batch=BATCH,
        sim_steps=SMALL_SIM_STEPS,
        sim_ratios=subset,
        seed=5,
        regime_map=False,
    ).sim
    assert again is not None
    assert again.ratios.tolist() == subset
    np.testing.assert_array_equal(
        again.throughput_per_instance, sim.throughput_per_instance[[0, -1]]
    )


def test_sim_points_are_full_bundles(built: ReportData) -> None:
    """Closed loop keeps every slot busy: Λ = r·B/((r+1)·mean step time) at each point."""
    sim = built.sim
    assert sim is not None
    expected = sim.ratios * BATCH / ((sim.ratios + 1) * sim.step_time_mean_s)
    np.testing.assert_allclose(sim.throughput_per_instance, expected, rtol=1e-6)
    assert np.all((sim.ffn_idle >= 0) & (sim.ffn_idle <= 1))


def test_regime_map_holds_the_report_cell(built: ReportData) -> None:
    """The map's cell at the report's (θ, B) repeats the recommendation; r* is the closed form."""
    grid = built.regime_map
    assert grid is not None
    rec = built.recommendation
    row = int(np.flatnonzero(grid.batches == BATCH)[0])
    col = int(np.flatnonzero(np.isclose(grid.theta_tokens, rec.theta))[0])
    assert grid.r_int[row, col] == rec.r_int
    assert REGIMES[grid.regime_codes[row, col]] == rec.regime
    c = built.coefficients
    for i, b in enumerate(grid.batches):
        for j, theta in enumerate(grid.theta_tokens):
            t_a = c.alpha_attn_s + c.beta_attn_s_per_token * b * theta
            r_a = (t_a - c.alpha_ffn_s) / (c.beta_ffn_s_per_token * b)
            r_c = (c.comm_time_s(b) - c.alpha_ffn_s) / (c.beta_ffn_s_per_token * b)
            r_peak = math.sqrt(c.alpha_ffn_s / (c.beta_ffn_s_per_token * b))
            assert grid.r_star_mean_field[i, j] == pytest.approx(max(r_a, r_c, r_peak), rel=1e-9)


def test_theta_given_directly(coefficients: CostCoefficients) -> None:
    """With θ and σ instead of a trace: no workload panel, no simulation, a note says so."""
    data = build_report_data(
        coefficients, theta_tokens=1500.0, slot_load_std_tokens=700.0, batch=BATCH
    )
    assert data.workload is None and data.sim is None
    assert data.recommendation.theta == 1500.0
    assert any("given directly" in note for note in data.notes)


def test_no_timestamps_no_windows(coefficients: CostCoefficients) -> None:
    """A trace without arrival times gets no θ-over-time panel and a note."""
    trace = _synthetic_trace(500, seed=3, timestamps=False)
    data = build_report_data(coefficients, trace=trace, batch=BATCH, sim_steps=0)
    assert data.workload is not None and data.workload.windows is None
    assert data.sim is None
    assert any("no timestamps" in note for note in data.notes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "either a trace or theta_tokens"),
        ({"theta_tokens": 10.0, "trace": "T"}, "either a trace or theta_tokens"),
        ({"theta_tokens": 10.0, "sim_steps": -5}, "sim_steps must be >= 0 steps, got -5"),
    ],
)
def test_bad_options(
    coefficients: CostCoefficients, trace: Trace, kwargs: dict, match: str
) -> None:
    """Contradictory or negative options raise InputError naming the option and value."""
    if kwargs.get("trace") == "T":
        kwargs = {**kwargs, "trace": trace}
    with pytest.raises(InputError, match=match):
        build_report_data(coefficients, **kwargs)
