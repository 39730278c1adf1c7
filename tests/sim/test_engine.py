"""Behaviour of :func:`afdsizer.sim.simulate` against independent oracles."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from tests.conftest import TRACES, require_shared

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.sim import SimConfig, simulate, sweep_ratios

from ._helpers import ATTENTION_BOUND, BALANCED, read_trace, theta_from_arrays

CONV = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
CODE = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv"


def _lengths(n: int, p_max: int, d_max: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random (P, D) pairs, P in 1 … p_max, D in 1 … d_max."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, p_max + 1, n), rng.integers(1, d_max + 1, n)


def _replay_loads(
    prompt: list[int], decode: list[int], batch: int, steps: int
) -> tuple[list[int], list[int]]:
    """Brute force, r = 1, closed loop, replay in order: (load, active) per step.

    Slot b takes trace row (admission count mod n) when empty (slots in order), attends to
    P + k at its k-th step and leaves after D steps.
    """
    n = len(prompt)
    counter = 0
    slots: list[list[int] | None] = [None] * batch  # [P, D, k]
    loads, active = [], []
    for _ in range(steps):
        for b in range(batch):
            if slots[b] is None:
                slots[b] = [prompt[counter % n], decode[counter % n], 0]
                counter += 1
        loads.append(sum(s[0] + s[2] for s in slots if s is not None))
        active.append(sum(1 for s in slots if s is not None))
        for b in range(batch):
            s = slots[b]
            assert s is not None
            s[2] += 1
            if s[2] == s[1]:
                slots[b] = None
    return loads, active


@pytest.mark.parametrize("pipeline", ["overlapped", "serial"])
def test_r1_step_time_equals_cost_model(pipeline: str) -> None:
    """r = 1, no jitter: τ is the cost model at the realised load, step by step, exactly."""
    prompt, decode = [5, 1, 40, 7], [2, 3, 1, 4]
    batch, steps = 3, 40
    c = BALANCED
    config = SimConfig(
        ratio=1, batch=batch, steps=steps, refill="replay", pipeline=pipeline,  # type: ignore[arg-type]
        record_series=True, warmup_steps=0,
    )  # fmt: skip
    series = simulate(prompt, decode, c, config).series
    assert series is not None
    loads, active = _replay_loads(prompt, decode, batch, steps)
    np.testing.assert_array_equal(series.load_tokens, loads)
    np.testing.assert_array_equal(series.active_slots, active)
    for i in range(steps):
        t_a = c.alpha_attn_s + c.beta_attn_s_per_token * loads[i]
        t_c = (
            c.alpha_comm_s
            + c.beta_comm_s_per_token * active[i]
            + c.gamma_comm_s_per_token * active[i]
        )
        t_f = c.alpha_ffn_s + c.beta_ffn_s_per_token * active[i]
        expected = t_a + t_c + t_f if pipeline == "serial" else max(t_a, t_c, t_f)
        assert series.step_time_s[i] == expected
        assert series.attention_max_s[i] == t_a


def test_microbatch_bounds() -> None:
    """Microbatch makespan lies between the busiest stage and the serial sum of its parts."""
    p, d = _lengths(57, 400, 57)
    config = SimConfig(
        ratio=3, batch=8, steps=400, pipeline="microbatch", microbatches=2, layers=8,
        record_series=True,
    )  # fmt: skip
    s = simulate(p, d, BALANCED, config).series
    assert s is not None
    lower = np.maximum(np.maximum(s.attention_max_s, s.comm_s), s.ffn_s)
    upper = s.attention_max_s + s.comm_s + s.ffn_s
    assert np.all(s.step_time_s >= lower * (1 - 1e-12))
    assert np.all(s.step_time_s <= upper * (1 + 1e-12))
    assert np.any(s.step_time_s < upper * (1 - 1e-3))  # some overlap actually happens


def test_one_microbatch_is_serial() -> None:
    """m = 1 through any number of layers gives the serial step time (to rounding)."""
    p, d = _lengths(30, 300, 28)
    base = dict(ratio=2, batch=4, steps=200, record_series=True)
    mb = simulate(
        p,
        d,
        BALANCED,
        SimConfig(**base, pipeline="microbatch", microbatches=1, layers=7),  # type: ignore[arg-type]
    )
    serial = simulate(p, d, BALANCED, SimConfig(**base, pipeline="serial"))  # type: ignore[arg-type]
    assert mb.series is not None and serial.series is not None
    np.testing.assert_allclose(mb.series.step_time_s, serial.series.step_time_s, rtol=1e-12)


def test_overlapped_never_slower_than_serial() -> None:
    """Same seed, same load path (closed loop): max ≤ sum at every step."""
    p, d = _lengths(70, 900, 70)
    base = dict(ratio=4, batch=8, steps=500, record_series=True, jitter_cv=0.2, seed=3)
    ov = simulate(p, d, BALANCED, SimConfig(**base))  # type: ignore[arg-type]
    se = simulate(p, d, BALANCED, SimConfig(**base, pipeline="serial"))  # type: ignore[arg-type]
    assert ov.series is not None and se.series is not None
    np.testing.assert_array_equal(ov.series.load_tokens, se.series.load_tokens)
    assert np.all(ov.series.step_time_s <= se.series.step_time_s)
    assert ov.throughput_per_instance > se.throughput_per_instance


@pytest.mark.parametrize("trace", [CONV, CODE], ids=["conv", "code"])
def test_mean_slot_load_converges_to_theta(trace: object) -> None:
    """Closed loop, resampling the real trace: realised mean slot load → θ within its CI.

    The CI comes from independent replications (seeds): batch means within one run
    understate the spread on the heavy-tailed code trace, replications do not.
    """
    from scipy import stats

    prompt, decode = read_trace(require_shared(trace))  # type: ignore[arg-type]
    theta = theta_from_arrays(prompt, decode)
    n_rep = 8
    loads = np.array(
        [
            simulate(
                prompt, decode, ATTENTION_BOUND, SimConfig(ratio=4, batch=64, steps=15_000, seed=s)
            ).mean_slot_load
            for s in range(n_rep)
        ]
    )
    se = loads.std(ddof=1) / math.sqrt(n_rep)
    half_width = float(stats.t.ppf(0.9995, n_rep - 1)) * se  # 99.9% two-sided
    assert abs(loads.mean() - theta) < half_width
    assert half_width < 0.03 * theta  # the CI is tight enough to mean something


def test_mean_slot_load_matches_series() -> None:
    """mean_slot_load is Σ load / Σ active over the measured steps of the series."""
    p, d = _lengths(50, 3000, 80)
    res = simulate(p, d, BALANCED, SimConfig(ratio=3, batch=5, steps=900, record_series=True))
    s = res.series
    assert s is not None
    w = res.warmup_steps
    assert res.mean_slot_load == pytest.approx(
        s.load_tokens[w:].sum() / s.active_slots[w:].sum(), rel=1e-12
    )


def test_littles_law_open_loop() -> None:
    """Open loop, Poisson arrivals: mean number in system L = λ·W."""
    rng = np.random.default_rng(5)
    p = rng.integers(10, 2000, 400)
    d = rng.integers(1, 60, 400)
    # Step ≈ 2-3 ms, 16 slots, E[D] ≈ 30: capacity ≈ 200 req/s; load it to about 70%.
    config = SimConfig(
        ratio=2, batch=8, steps=60_000, arrivals="poisson", arrival_rate_per_s=140.0, seed=2
    )
    res = simulate(p, d, ATTENTION_BOUND, config)
    assert 0.3 < res.slot_occupancy < 0.95
    assert res.queue_delay_mean_s > 0
    assert res.arrival_rate_per_s == pytest.approx(140.0, rel=0.03)
    assert res.mean_in_system == pytest.approx(
        res.arrival_rate_per_s * res.mean_time_in_system_s, rel=0.03
    )


def test_open_loop_trace_arrivals_follow_the_timestamps() -> None:
    """Trace arrivals, time-scaled: the realised arrival rate is n / (span · scale) per second."""
    rng = np.random.default_rng(9)
    n = 500
    t = np.sort(rng.uniform(0, 50.0, n))
    p, d = rng.integers(1, 500, n), rng.integers(1, 20, n)
    scale = 0.25
    res = simulate(
        p, d, ATTENTION_BOUND,
        SimConfig(ratio=2, batch=8, steps=20_000, arrivals="trace", trace_time_scale=scale),
        arrival_s=t,
    )  # fmt: skip
    period = (t[-1] - t[0]) * (1 + 1 / (n - 1)) * scale
    assert res.arrival_rate_per_s == pytest.approx(n / period, rel=0.05)
    assert res.slot_occupancy < 1


def test_kv_capacity_is_respected() -> None:
    """A worker's KV never exceeds capacity; admission waits, so slots sit empty."""
    rng = np.random.default_rng(4)
    p, d = rng.integers(100, 1000, 300), rng.integers(1, 100, 300)
    cap = 3000.0
    res = simulate(
        p, d, ATTENTION_BOUND,
        SimConfig(ratio=1, batch=8, steps=3000, kv_capacity_tokens=cap, record_series=True),
    )  # fmt: skip
    assert res.series is not None
    assert res.series.load_tokens.max() <= cap
    assert res.slot_occupancy < 0.9
    free = simulate(p, d, ATTENTION_BOUND, SimConfig(ratio=1, batch=8, steps=3000))
    assert free.slot_occupancy == 1.0


def test_coefficients_kv_capacity_used_by_default() -> None:
    """Without a config override the coefficients' KV capacity applies."""
    c = dataclasses.replace(ATTENTION_BOUND, kv_capacity_tokens=100.0)
    with pytest.raises(InputError, match="batch B=8 does not fit in KV memory"):
        simulate([20, 30], [5, 5], c, SimConfig(ratio=1, batch=8, steps=10))


def test_common_random_numbers_across_r() -> None:
    """Worker 0 gets the same requests for any r, so τ(r=3) ≥ τ(r=1) at every step."""
    rng = np.random.default_rng(8)
    p, d = rng.integers(1, 3000, 500), rng.integers(1, 200, 500)
    taus = []
    for r in (1, 3):
        res = simulate(
            p, d, ATTENTION_BOUND,
            SimConfig(ratio=r, batch=16, steps=2000, seed=21, record_series=True),
        )  # fmt: skip
        assert res.series is not None
        taus.append(res.series.step_time_s)
    assert np.all(taus[1] >= taus[0])
    assert np.any(taus[1] > taus[0])


def test_jitter_has_mean_one_and_requested_cv() -> None:
    """Constant load, Attention bound: τ / t_A samples the jitter factor (mean 1, CV given)."""
    p, d = np.array([1000]), np.array([10**6])
    for dist in ("lognormal", "gamma"):
        res = simulate(
            p, d, ATTENTION_BOUND,
            SimConfig(ratio=1, batch=1, steps=20_000, jitter_cv=0.4, jitter_dist=dist,  # type: ignore[arg-type]
                      record_series=True, warmup_steps=0),
        )  # fmt: skip
        assert res.series is not None
        load = res.series.load_tokens
        ratio = res.series.attention_max_s / ATTENTION_BOUND.attention_time_s(load.astype(float))
        assert ratio.mean() == pytest.approx(1.0, abs=0.015)
        assert ratio.std() / ratio.mean() == pytest.approx(0.4, rel=0.05)


def test_idle_fractions_definitions() -> None:
    """Idle fractions follow their definitions from the recorded series."""
    p, d = _lengths(120, 2000, 119)
    res = simulate(
        p, d, BALANCED,
        SimConfig(ratio=3, batch=8, steps=1000, jitter_cv=0.3, record_series=True),
    )  # fmt: skip
    s = res.series
    assert s is not None
    w = res.warmup_steps
    total = s.step_time_s[w:].sum()
    assert res.attention_idle == pytest.approx(1 - s.attention_mean_s[w:].sum() / total)
    assert res.ffn_idle == pytest.approx(1 - s.ffn_s[w:].sum() / total)
    assert res.barrier_idle == pytest.approx(
        (s.attention_max_s[w:] - s.attention_mean_s[w:]).sum() / total
    )
    assert 0 < res.barrier_idle < res.attention_idle < 1
    r = 3
    assert res.throughput_per_instance == pytest.approx(s.active_slots[w:].sum() / total / (r + 1))
    assert res.step_time_p99_s == pytest.approx(np.percentile(s.step_time_s[w:], 99))


def test_throughput_stderr_matches_seed_spread() -> None:
    """The batch-means standard error is of the size of the spread across seeds."""
    rng = np.random.default_rng(1)
    p, d = rng.integers(1, 4000, 2000), rng.integers(1, 300, 2000)
    values, errors = [], []
    for seed in range(8):
        res = simulate(p, d, ATTENTION_BOUND, SimConfig(ratio=2, batch=8, steps=20_000, seed=seed))
        values.append(res.throughput_per_instance)
        errors.append(res.throughput_stderr)
    spread = float(np.std(values, ddof=1))
    assert 0.4 < float(np.mean(errors)) / spread < 2.5


def test_tpot_closed_loop_r1_constant_step() -> None:
    """With a step time independent of load, TPOT of every request is that step time."""
    c = CostCoefficients(
        alpha_attn_s=1e-3, beta_attn_s_per_token=1e-12, alpha_comm_s=1e-4,
        beta_comm_s_per_token=1e-12, alpha_ffn_s=5e-3, beta_ffn_s_per_token=1e-12,
    )  # fmt: skip
    res = simulate([10, 20, 30], [3, 7, 11], c, SimConfig(ratio=2, batch=4, steps=500))
    tau = c.alpha_ffn_s + c.beta_ffn_s_per_token * 8
    assert res.tpot_p50_s == pytest.approx(tau, rel=1e-9)
    assert res.tpot_p99_s == pytest.approx(tau, rel=1e-9)
    assert res.queue_delay_mean_s == 0.0
    assert math.isnan(res.arrival_rate_per_s)


def test_sweep_ratios_uses_same_seed_and_picks_best() -> None:
    """sweep_ratios runs each r with the config's seed and reports the arg-max."""
    p, d = _lengths(55, 2000, 55)
    cfg = SimConfig(ratio=1, batch=8, steps=800, seed=4)
    sweep = sweep_ratios(p, d, BALANCED, cfg, [1, 2, 4, 8])
    assert [r.ratio for r in sweep.results] == [1, 2, 4, 8]
    best = max(sweep.results, key=lambda r: r.throughput_per_instance)
    assert sweep.best_ratio == best.ratio and sweep.best is best
    again = simulate(p, d, BALANCED, dataclasses.replace(cfg, ratio=4))
    assert again.throughput_per_instance == sweep.results[2].throughput_per_instance
    with pytest.raises(InputError, match="ratios must list at least one"):
        sweep_ratios(p, d, BALANCED, cfg, [])


def test_progress_callback_reaches_total() -> None:
    """The progress callback is called per chunk and ends at (steps, steps)."""
    calls: list[tuple[int, int]] = []
    simulate(
        [5],
        [3],
        BALANCED,
        SimConfig(ratio=1, batch=2, steps=70_000),
        progress=lambda a, b: calls.append((a, b)),
    )
    assert calls[-1] == (70_000, 70_000)
    assert len(calls) == 2


@pytest.mark.parametrize("ratio", [1, 4, 16])
def test_fixed_lengths_match_mean_field_closed_form(ratio: int) -> None:
    """Fixed (P, D), Attention bound: no barrier, Λ = r·B / ((r+1)(α_A + β_A·B·θ)) exactly.

    θ = P + (D − 1)/2 for fixed lengths; all slots start together, so every worker carries the
    same load and the measured window (whole cycles of D steps) averages τ over one cycle.
    """
    P, D, B = 700, 10, 32
    c = ATTENTION_BOUND
    res = simulate([P], [D], c, SimConfig(ratio=ratio, batch=B, steps=1000, warmup_steps=100))
    theta = P + (D - 1) / 2
    tau = c.alpha_attn_s + c.beta_attn_s_per_token * B * theta
    assert res.throughput_per_instance == pytest.approx(ratio * B / ((ratio + 1) * tau), rel=1e-12)
    assert res.mean_slot_load == pytest.approx(theta, rel=1e-12)
    assert res.barrier_idle == pytest.approx(0.0, abs=1e-15)
    assert res.ffn_idle == pytest.approx(
        1 - (c.alpha_ffn_s + c.beta_ffn_s_per_token * ratio * B) / tau, rel=1e-12
    )
